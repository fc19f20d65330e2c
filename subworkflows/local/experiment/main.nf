/*
 * A paper's tables and figures (experiments/<name>.yaml) on the preprocessed subjects:
 *   EXPERIMENT_PLAN -> [EXTRACT_SLICES for 2D tasks on 3D data] -> PRETRAIN_DIFFUSION (or the user's
 *   checkpoint) -> TRAIN_RUN per distinct training -> REGISTER per registration set and test pair
 *   -> EVALUATE -> EXPERIMENT_ARTIFACTS (+ DGIR_FIGURES)
 * Every trained network is shared by the rows that use it (plan/uses.csv).
 */
include { EXPERIMENT_PLAN      } from '../../../modules/local/experiment_plan'
include { EXTRACT_SLICES       } from '../../../modules/local/extract_slices'
include { PRETRAIN_DIFFUSION   } from '../../../modules/local/pretrain_diffusion'
include { TRAIN_RUN            } from '../../../modules/local/train_run'
include { REGISTER as EXPERIMENT_REGISTER } from '../../../modules/local/register'
include { EVALUATE as EXPERIMENT_EVALUATE } from '../../../modules/local/evaluate'
include { DGIR_FIGURES         } from '../../../modules/local/dgir_figures'
include { EXPERIMENT_ARTIFACTS } from '../../../modules/local/experiment_artifacts'

// user files the plan knows by parameter name (a row needing one without it reads "needs weights")
def WEIGHTS = ['dgir_vgg_weights', 'dgir_dino_weights', 'unigradicon_weights']

def optionalFile(value) { value ? file(value, checkIfExists: true) : file("${projectDir}/assets/NO_FILE") }

workflow EXPERIMENT {
    take:
    name          // e.g. 'dgir'
    subjects      // [meta, [images]] preprocessed
    pairs_csv     // MAKE_PAIRS csv: pair_id, moving_subject, fixed_subject
    label_names

    main:
    experiment = file("${projectDir}/experiments/${name}.yaml", checkIfExists: true)
    given = WEIGHTS.findAll { params[it] }.join(',')
    // one image (the data's dimensionality) and every modality of the samplesheet
    example = subjects.map { meta, files -> [files.find { !it.name.contains('labels') }, meta.modalities] }
        .toSortedList { a, b -> a[0].name <=> b[0].name }
        .map { list -> [list[0][0], list.collectMany { it[1] }.unique().sort()] }
    EXPERIMENT_PLAN(name, experiment, example, given)
    plan = EXPERIMENT_PLAN.out.plan

    // subjects per dimensionality: 3D data also feed the 2D tasks through one slice per subject
    data_ndim = params.input ? null : params.toy_ndim as int
    if (data_ndim == 3) {
        EXTRACT_SLICES(subjects)
        // slices are named <subject>_2d_<modality>: meta.stem is what precedes the modality
        by_ndim = subjects.map { meta, files -> [3, meta, files] }
            .mix(EXTRACT_SLICES.out.subject.map { meta, files -> [2, meta + [stem: "${meta.id}_2d".toString()], files] })
    } else {
        by_ndim = subjects.map { meta, files -> [data_ndim ?: (params.toy_ndim as int), meta, files] }
    }

    // the diffusion feature model: the official weights the user gives, else the offline one
    if (params.dgir_checkpoint) {
        feature_model = Channel.value(file(params.dgir_checkpoint, checkIfExists: true))
    } else {
        PRETRAIN_DIFFUSION(plan)
        feature_model = PRETRAIN_DIFFUSION.out.checkpoint
    }

    // trainings: [ndim, run, method, moving, fixed, config] joined with that ndim's training subjects
    runs = plan.flatMap { dir -> dir.resolve('runs.csv').splitCsv(header: true)
        .collect { r -> [r.ndim as int, r.run, r.method, r.train_moving, r.train_fixed, dir.resolve("configs/${r.config}"), r.features == 'yes'] } }
    train_sets = by_ndim.filter { ndim, meta, files -> meta.split == 'train' }
        .map { ndim, meta, files -> [ndim, meta.stem ?: meta.id, files] }
        .groupTuple()
        .map { ndim, ids, files -> [ndim, ids.sort(), files.flatten().sort { it.name }] }   // sorted: stable -resume hashes
    // only the runs on diffusion features wait for the feature model
    no_file = file("${projectDir}/assets/NO_FILE")
    train_in = runs.combine(train_sets, by: 0)
        .map { ndim, run, method, mov, fix, config, features, ids, files -> [features, [run, method, mov, fix, config, ids, files]] }
        .branch { features, item -> features: features; plain: true }
    TRAIN_RUN(
        train_in.features.combine(feature_model).map { features, item, model -> item + [model] }
            .mix(train_in.plain.map { features, item -> item + [no_file] }),
        optionalFile(params.dgir_vgg_weights),
        optionalFile(params.dgir_dino_weights)
    )

    // registration sets x test pairs of that ndim: [meta, moving, fixed, moving_labels, fixed_labels, label, model]
    def pick = { files, suffix -> files.find { it.name.endsWith("_${suffix}.nii.gz") } }
    def pickLabels = { files, modality -> pick(files, "${modality}_labels") ?: pick(files, 'labels') }
    tests = plan.flatMap { dir -> dir.resolve('tests.csv').splitCsv(header: true)
        .collect { r -> [r.run, r.label, r.ndim as int, r.test_moving, r.test_fixed] } }
        .combine(TRAIN_RUN.out.model, by: 0)                 // [run, label, ndim, mov, fix, model]
        .map { run, label, ndim, mov, fix, model -> [ndim, label, mov, fix, model] }
    files_by_key = by_ndim.map { ndim, meta, files -> [[ndim, meta.id], files] }
    pair_rows = pairs_csv.splitCsv(header: true)
    reg_in = tests.combine(pair_rows)
        .map { ndim, label, mov, fix, model, row -> [[ndim, row.moving_subject], ndim, label, mov, fix, model, row] }
        .combine(files_by_key, by: 0)
        .map { key, ndim, label, mov, fix, model, row, mfiles -> [[ndim, row.fixed_subject], label, mov, fix, model, row, mfiles] }
        .combine(files_by_key, by: 0)
        .map { key, label, mov, fix, model, row, mfiles, ffiles ->
            // the pair named by its subjects: the modalities are the registration set's, not the main pairs'
            def meta = [id: "${row.moving_subject}_to_${row.fixed_subject}", moving: row.moving_subject, fixed: row.fixed_subject, dataset: name]
            [meta, pick(mfiles, mov), pick(ffiles, fix), pickLabels(mfiles, mov), pickLabels(ffiles, fix), label, model]
        }
    EXPERIMENT_REGISTER(reg_in)
    EXPERIMENT_EVALUATE(EXPERIMENT_REGISTER.out.registration, label_names)

    // Fig. 1/2: moving and fixed modality of the first test subject (aligned: one subject)
    fig_specs = plan.flatMap { dir -> dir.resolve('figures.csv').splitCsv(header: true)
        .findAll { it.command == 'dgir-figures' }.collect { r -> [r.ndim as int, r.moving, r.fixed] } }.first()
    fig_subject = by_ndim.filter { ndim, meta, files -> meta.split == 'test' }
        .toSortedList { a, b -> a[1].id <=> b[1].id }
        .map { list -> [list] }   // one item, so that combine does not spread the list
        .combine(fig_specs)
        .flatMap { list, ndim, mov, fix ->
            def s = list.find { it[0] == ndim }
            s ? [[s[1], pick(s[2], mov), pick(s[2], fix)]] : []
        }
    DGIR_FIGURES(fig_subject, feature_model)
    figures = DGIR_FIGURES.out.figures.ifEmpty(file("${projectDir}/assets/NO_FILE"))

    registrations = EXPERIMENT_REGISTER.out.registration
    EXPERIMENT_ARTIFACTS(
        name, experiment, plan,
        // sorted: the same inputs in the same order, so that -resume finds the task
        EXPERIMENT_EVALUATE.out.metrics.collect(sort: true).ifEmpty([]),
        registrations.map { it[1] }.collect(sort: true).ifEmpty([]),
        by_ndim.flatMap { ndim, meta, files -> files }.collect(sort: true),
        figures,
        label_names
    )

    emit:
    artifacts = EXPERIMENT_ARTIFACTS.out.artifacts
    versions  = EXPERIMENT_PLAN.out.versions.mix(TRAIN_RUN.out.versions.first(), EXPERIMENT_ARTIFACTS.out.versions)
}
