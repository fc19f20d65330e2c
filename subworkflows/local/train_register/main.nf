// Trains each learned method on the training subjects and registers every evaluation pair.
include { TRAIN    } from '../../../modules/local/train'
include { REGISTER } from '../../../modules/local/register'

workflow TRAIN_REGISTER {
    take:
    subjects   // [meta, [images]]
    pairs      // [meta, moving, fixed, moving_labels, fixed_labels]
    methods    // list of method names

    main:
    ch_train = subjects.filter { meta, files -> meta.split == 'train' }
    ch_train_files = ch_train.flatMap { meta, files -> files }.collect()
    ch_train_ids = ch_train.map { meta, files -> meta.id }.toSortedList()
    TRAIN(Channel.fromList(methods), ch_train_files, ch_train_ids)
    REGISTER(pairs.combine(TRAIN.out.model))

    emit:
    registrations = REGISTER.out.registration
    versions      = TRAIN.out.versions.first().mix(REGISTER.out.versions.first())
}
