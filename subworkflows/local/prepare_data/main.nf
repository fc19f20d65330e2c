/*
 * Every dataset of the run (the embedded stand-in `toy`, or the user's samplesheets) ->
 * preprocessed subjects, evaluation pairs and label names, all keyed by dataset. Subjects carry
 * meta.ndim; 3D embedded volumes also give a 2D subject (one slice) for the papers' 2D tasks.
 */
include { TOY_DATA       } from '../../../modules/local/toy_data'
include { PREPROCESS     } from '../../../modules/local/preprocess'
include { MAKE_PAIRS     } from '../../../modules/local/make_pairs'
include { EXTRACT_SLICES } from '../../../modules/local/extract_slices'

// One samplesheet row -> [meta, [images...], [label maps...]]; relative paths resolve against the
// sheet's folder. meta.modalities names the images in order, the image of reference_modality
// first, since PREPROCESS aligns the subject with it. Label maps come from `labels` (shared by the
// subject's images) or `labels_<modality>` (one per frame, as in cardiac data). Outputs are renamed
// <subject>_<modality>.nii.gz, <subject>_labels.nii.gz and <subject>_<modality>_labels.nii.gz.
def parseRow(row, base, dataset, ndim, reference_modality) {
    def resolve = { p -> p.startsWith('/') ? file(p) : base.resolve(p) }
    def cols = row.findAll { k, v -> k.startsWith('image_') && v }
        .sort { kv -> kv.key == "image_${reference_modality}" ? 0 : 1 }
    def labels = row.findAll { k, v -> (k == 'labels' || k.startsWith('labels_')) && v }
    // split and prealigned as `diffreg validate` reads them (docs/samplesheet.md): case and spaces ignored
    def meta = [dataset: dataset, ndim: ndim, id: row.subject, split: (row.split ?: '').trim().toLowerCase(),
                modalities: cols.keySet().collect { it - 'image_' },
                label_names: labels.keySet().collect { it == 'labels' ? 'labels' : "${it - 'labels_'}_labels" },
                prealigned: (row.prealigned ?: 'false').trim().toLowerCase() in ['true', '1', 'yes']]
    return [meta, cols.values().collect { resolve(it) }, labels.values().collect { resolve(it) }]
}

workflow PREPARE_DATA {
    take:
    datasets    // [[name, samplesheet or null (the embedded data), ndim]]
    toy         // [n_subjects, size, ndim, seed] of the embedded data
    settings    // [reference: file or null, reference_modality: name]

    main:
    def user = datasets.findAll { it[1] }
    ch_sheets = Channel.fromList(user.collect { name, sheet, ndim -> [name, file(sheet, checkIfExists: true), ndim] })
    ch_names = Channel.fromList(user.collect { name, sheet, ndim -> [name, file(datasets.size() == 1 && settings.label_names ? settings.label_names : "${projectDir}/assets/NO_FILE")] })
    if (datasets.any { !it[1] }) {
        TOY_DATA(toy[0], toy[1], toy[2], toy[3])
        ch_sheets = ch_sheets.mix(TOY_DATA.out.samplesheet.map { ['toy', it, toy[2] as int] })
        ch_names = ch_names.mix(TOY_DATA.out.label_names.map { ['toy', it] })
    }
    ch_subjects = ch_sheets.flatMap { name, sheet, ndim ->
        sheet.splitCsv(header: true).collect { row -> parseRow(row, sheet.parent, name, ndim as int, settings.reference_modality) } }

    // The affine reference of each dataset: the user's, or its first training subject's image of reference_modality.
    ch_reference = ch_subjects
        .filter { meta, images, labels -> meta.split == 'train' }
        .map { meta, images, labels -> [meta.dataset, meta.id, images[0]] }
        .groupTuple()
        .map { dataset, ids, images ->
            def ref = settings.reference ? file(settings.reference, checkIfExists: true) : [ids, images].transpose().sort { it[0] }[0][1]
            [dataset, ref]
        }
    PREPROCESS(
        ch_subjects.map { meta, images, labels -> [meta.dataset, meta, images, labels] }
            .combine(ch_reference, by: 0)
            .map { dataset, meta, images, labels, ref -> [meta, images, labels, ref] }
    )
    MAKE_PAIRS(ch_sheets.map { name, sheet, ndim -> [name, sheet] })

    // embedded 3D volumes also feed the 2D tasks, through one slice per subject named <subject>_2d_<modality>
    EXTRACT_SLICES(PREPROCESS.out.subject.filter { meta, files -> meta.dataset == 'toy' && meta.ndim == 3 })
    ch_all = PREPROCESS.out.subject
        .mix(EXTRACT_SLICES.out.subject.map { meta, files -> [meta + [ndim: 2, stem: "${meta.id}_2d".toString()], files] })

    emit:
    subjects    = ch_all                 // [meta (dataset, ndim, id, split, modalities, stem?), [images and label maps]]
    qc          = PREPROCESS.out.qc      // before/after pictures
    pairs       = MAKE_PAIRS.out.csv     // [dataset, pairs.csv]
    label_names = ch_names               // [dataset, labels.json or NO_FILE]
}
