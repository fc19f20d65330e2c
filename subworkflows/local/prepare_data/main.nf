/*
 * Every dataset of the run (the embedded stand-in `toy`, the user's samplesheets, and the embedded
 * stand-in of each dataset a paper's task names that no samplesheet gives: standinDatasets) ->
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
// Files only evaluation reads (meta.extras names them, in order; PREPROCESS copies them): `landmarks`
// -> <subject>_landmarks.csv, `rgb_<modality>` -> <subject>_<modality>.rgb.nii.gz (not ending in
// _<modality>.nii.gz, so that pick() never takes them for the grey image).
def parseRow(row, base, dataset, ndim, reference_modality, flags) {
    def resolve = { p -> p.startsWith('/') ? file(p) : base.resolve(p) }
    def cols = row.findAll { k, v -> k.startsWith('image_') && v }
        .sort { kv -> kv.key == "image_${reference_modality}" ? 0 : 1 }
    def labels = row.findAll { k, v -> (k == 'labels' || k.startsWith('labels_')) && v }
    def extras = row.findAll { k, v -> v && (k == 'landmarks' || (k.startsWith('rgb_') && row.get('image_' + (k - 'rgb_')))) }
    // split and prealigned as `diffreg validate` reads them (docs/samplesheet.md): case and spaces ignored
    def meta = [dataset: dataset, ndim: ndim, id: row.subject, split: (row.split ?: '').trim().toLowerCase(),
                flags: flags ?: '',   // the dataset's own `diffreg preprocess` flags (--dataset_args)
                modalities: cols.keySet().collect { it - 'image_' },
                label_names: labels.keySet().collect { it == 'labels' ? 'labels' : "${it - 'labels_'}_labels" },
                prealigned: (row.prealigned ?: 'false').trim().toLowerCase() in ['true', '1', 'yes'],
                extras: extras.keySet().collect { it == 'landmarks' ? 'landmarks.csv' : "${it - 'rgb_'}.rgb.nii.gz".toString() }]
    return [meta, cols.values().collect { resolve(it) }, labels.values().collect { resolve(it) }, extras.values().collect { resolve(it) }]
}

workflow PREPARE_DATA {
    take:
    datasets    // [[name, sheet: samplesheet or null (embedded), ndim, standin: made for a paper's task]]
    toy         // [subjects, size, ndim, seed] of the embedded brain population, [standin_subjects, standin_size] of the stand-ins (null: the same)
    settings    // [reference: file or null, reference_modality: name, label_names, moving_modality: the main path's,
                //  sliced: names of 3D datasets that also feed 2D tasks, recipes2d: those with a NAME:2d recipe,
                //  flags: each dataset's (and NAME:2d recipe's) own preprocessing flags]

    main:
    def user = datasets.findAll { it.sheet }
    ch_sheets = Channel.fromList(user.collect { d -> [d.name, file(d.sheet, checkIfExists: true), d.ndim] })
    // --label_names: the one dataset the user named (stand-ins added for the papers do not count);
    // otherwise the labels.json a dataset adapter wrote beside the samplesheet (`diffreg dataset`)
    def named = datasets.count { !it.standin }
    def namesOf = { sheet ->
        if (named == 1 && settings.label_names) return file(settings.label_names)
        def beside = file(sheet).parent.resolve('labels.json')
        return beside.exists() ? beside : file("${projectDir}/assets/NO_FILE")
    }
    ch_names = Channel.fromList(user.collect { d -> [d.name, namesOf(d.sheet)] })
    def made = datasets.findAll { !it.sheet }
    ch_made_pairs = Channel.empty()
    ch_standin_qc = Channel.empty()
    ch_versions = Channel.empty()
    if (made) {
        // the brain population keeps the --toy_* settings of its dimensionality; a stand-in, its tasks'
        TOY_DATA(Channel.fromList(made.collect { it.name == 'toy' ? [it.name, toy.subjects, toy.size, toy.ndim, toy.seed]
                                                                   : [it.name, toy.standin_subjects ?: toy.subjects, toy.standin_size ?: toy.size, it.ndim, toy.seed] }))
        ch_sheets = ch_sheets.mix(TOY_DATA.out.samplesheet)
        ch_names = ch_names.mix(TOY_DATA.out.label_names)
        ch_made_pairs = TOY_DATA.out.pairs
        ch_standin_qc = TOY_DATA.out.qc
        ch_versions = TOY_DATA.out.versions
    }
    ch_subjects = ch_sheets.flatMap { name, sheet, ndim ->
        sheet.splitCsv(header: true).collect { row -> parseRow(row, sheet.parent, name, ndim as int, settings.reference_modality, settings.flags[name]) } }

    // The affine reference of each dataset: the user's, or its first training subject's image of reference_modality.
    ch_reference = ch_subjects
        .filter { meta, images, labels, extras -> meta.split == 'train' }
        .map { meta, images, labels, extras -> [meta.dataset, meta.id, images[0]] }
        .groupTuple()
        .map { dataset, ids, images ->
            def ref = settings.reference ? file(settings.reference, checkIfExists: true) : images[ids.indexOf(ids.min())]
            [dataset, ref]
        }
    // a 3D dataset that 2D tasks name and that has its own 2D recipe (--dataset_args 'NAME:2d=...', e.g.
    // a paper's mid-slices of a cardiac cine) is preprocessed twice: as a volume, and with that recipe as a 2D subject
    def recipes2d = settings.recipes2d ?: []
    PREPROCESS(
        ch_subjects.map { meta, images, labels, extras -> [meta.dataset, meta, images, labels, extras] }
            .combine(ch_reference, by: 0)
            .flatMap { dataset, meta, images, labels, extras, ref ->
                def twice = meta.ndim == 3 && dataset in settings.sliced && dataset in recipes2d
                [[meta, images, labels, ref, extras]] + (twice ? [[meta + [ndim: 2, stem: "${meta.id}_2d".toString(), flags: settings.flags["${dataset}:2d".toString()] ?: ''],
                                                                  images, labels, ref, extras]] : []) }
    )
    def standin = made.findAll { it.name != 'toy' }.collect { it.name }   // their pairs come with them
    // a dataset without the main path's modality (e.g. acdc's ed/es beside toy's be) gets no own
    // pairs: its tasks name their paper's pairs (TASK_PAIRS); make-pairs would stop on it
    def moving = "image_${settings.moving_modality ?: 'be'}".toString()
    MAKE_PAIRS(ch_sheets.filter { name, sheet, ndim -> !(name in standin) && moving in sheet.readLines()[0].tokenize(',')*.trim() }
        .map { name, sheet, ndim -> [name, sheet] })

    // 3D volumes of toy and of the datasets 2D tasks name also feed those tasks, through one slice per
    // subject named <subject>_2d_<modality>
    def sliced = ['toy'] + (settings.sliced ?: []).findAll { !(it in recipes2d) }
    EXTRACT_SLICES(PREPROCESS.out.subject.filter { meta, files -> meta.dataset in sliced && meta.ndim == 3 })
    ch_all = PREPROCESS.out.subject
        .mix(EXTRACT_SLICES.out.subject.map { meta, files -> [meta + [ndim: 2, stem: "${meta.id}_2d".toString()], files] })

    emit:
    subjects    = ch_all                 // [meta (dataset, ndim, id, split, modalities, stem?), [images and label maps]]
    qc          = PREPROCESS.out.qc.mix(ch_standin_qc)   // before/after pictures, the stand-ins' pictures
    pairs       = MAKE_PAIRS.out.csv.mix(ch_made_pairs)  // [dataset, pairs.csv]
    sheets      = ch_sheets.map { name, sheet, ndim -> [name, sheet] }   // [dataset, samplesheet]
    label_names = ch_names               // [dataset, labels.json or NO_FILE]
    versions    = ch_versions.mix(PREPROCESS.out.versions, MAKE_PAIRS.out.versions, EXTRACT_SLICES.out.versions)   // [process, run.json]
}
