// Samplesheet (user's or embedded toy data) -> preprocessed subjects + evaluation pairs.
include { TOY_DATA   } from '../../../modules/local/toy_data'
include { PREPROCESS } from '../../../modules/local/preprocess'
include { MAKE_PAIRS } from '../../../modules/local/make_pairs'

// One samplesheet row -> [meta, [images...], [label maps...]]; relative paths resolve against the
// sheet's folder. meta.modalities names the images in order, the image of reference_modality
// first, since PREPROCESS aligns the subject with it. Label maps come from `labels` (shared by the
// subject's images) or `labels_<modality>` (one per frame, as in cardiac data). Outputs are renamed
// <subject>_<modality>.nii.gz, <subject>_labels.nii.gz and <subject>_<modality>_labels.nii.gz.
def parseRow(row, base) {
    def resolve = { p -> p.startsWith('/') ? file(p) : base.resolve(p) }
    def cols = row.findAll { k, v -> k.startsWith('image_') && v }
        .sort { kv -> kv.key == "image_${params.reference_modality}" ? 0 : 1 }
    def labels = row.findAll { k, v -> (k == 'labels' || k.startsWith('labels_')) && v }
    def meta = [id: row.subject, split: row.split, modalities: cols.keySet().collect { it - 'image_' },
                label_names: labels.keySet().collect { it == 'labels' ? 'labels' : "${it - 'labels_'}_labels" },
                prealigned: (row.prealigned ?: 'false').toLowerCase() == 'true']
    return [meta, cols.values().collect { resolve(it) }, labels.values().collect { resolve(it) }]
}

workflow PREPARE_DATA {
    main:
    ch_versions = Channel.empty()
    if (params.input) {
        ch_sheet = Channel.value(file(params.input, checkIfExists: true))
        ch_names = Channel.value(params.label_names ? file(params.label_names, checkIfExists: true) : file("${projectDir}/assets/NO_FILE"))
    } else {
        TOY_DATA(params.toy_subjects, params.toy_size, params.toy_ndim, params.seed)
        ch_sheet = TOY_DATA.out.samplesheet
        ch_names = TOY_DATA.out.label_names
        ch_versions = ch_versions.mix(TOY_DATA.out.versions)
    }
    ch_subjects = ch_sheet.flatMap { sheet -> sheet.splitCsv(header: true).collect { row -> parseRow(row, sheet.parent) } }

    // The affine reference: the user's, or the first training subject's image of reference_modality.
    if (params.reference) {
        ch_reference = Channel.value(file(params.reference, checkIfExists: true))
    } else {
        ch_reference = ch_subjects
            .filter { meta, images, labels -> meta.split == 'train' }
            .toSortedList { a, b -> a[0].id <=> b[0].id }
            .map { list ->
                if (!list) error "No subject with split 'train' in the samplesheet: cannot choose an affine reference"
                list[0][1][0]   // parseRow puts the reference modality first
            }
    }
    PREPROCESS(ch_subjects, ch_reference)
    MAKE_PAIRS(ch_sheet, params.pair_scheme, params.pair_split)
    ch_versions = ch_versions.mix(PREPROCESS.out.versions.first(), MAKE_PAIRS.out.versions)

    emit:
    subjects    = PREPROCESS.out.subject   // [meta, [images]] (labels among the images)
    qc          = PREPROCESS.out.qc        // before/after pictures
    pairs       = MAKE_PAIRS.out.csv
    label_names = ch_names
    versions    = ch_versions
}
