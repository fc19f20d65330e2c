// Classical baselines on the same pairs, written in the same field convention as the learned methods.
include { BASELINE } from '../../../modules/local/baseline'

workflow BASELINES {
    take:
    pairs      // [meta, moving, fixed, moving_labels, fixed_labels]
    methods    // list of baseline names

    main:
    BASELINE(pairs.combine(Channel.fromList(methods)))

    emit:
    registrations = BASELINE.out.registration
    versions      = BASELINE.out.versions.first()
}
