/*
 * The whole DAG, top to bottom. Everything after PREPARE_DATA comes from one plan, for the main
 * path (--methods, --baselines) and every paper of --papers alike (docs/engine.md):
 *
 *   datasets -> PREPARE_DATA -> PLAN -> PRETRAIN -> TRAIN -> REGISTER / BASELINE -> EVALUATE
 *            -> FIGURE -> ARTIFACTS (a paper's tables beside its numbers) -> TABULATE -> REPORT
 *
 * Nothing here knows a paper, a method or a weight file by name.
 */
include { PREPARE_DATA      } from '../subworkflows/local/prepare_data'
include { TRAIN_MODELS      } from '../subworkflows/local/train_models'
include { REGISTER_EVALUATE } from '../subworkflows/local/register_evaluate'
include { PLAN              } from '../modules/local/plan'
include { TASK_PAIRS        } from '../modules/local/task_pairs'
include { FIGURE            } from '../modules/local/figure'
include { ARTIFACTS         } from '../modules/local/artifacts'
include { TABULATE          } from '../modules/local/tabulate'
include { REPORT            } from '../modules/local/report'
include { pick; planRows; parseNeeds; resolveNeeds; softwareVersions } from '../subworkflows/local/utils'

workflow DIFFREG {
    take:
    launch      // launch.json of `diffreg launch` (main.nf): datasets (the first is the main path's),
                // papers (experiment YAML files), weights (user files by parameter name), sliced,
                // recipes2d, dataset_flags, plan_args

    main:
    def datasets = launch.datasets      // [[name, sheet (null: embedded), ndim, standin]]
    def papers = launch.papers.collect { file(it) }
    def weights = launch.weights ?: [:]
    PREPARE_DATA(datasets, [subjects: params.toy_subjects, size: params.toy_size, ndim: params.toy_ndim, seed: params.seed,
                            standin_subjects: params.standin_subjects, standin_size: params.standin_size],
                 [reference: params.reference, reference_modality: params.reference_modality, label_names: params.label_names,
                  moving_modality: params.moving_modality, sliced: launch.sliced, recipes2d: launch.recipes2d,
                  flags: launch.dataset_flags ?: [:]])
    subjects = PREPARE_DATA.out.subjects

    // one example image, the modalities and the dimensionalities of each dataset: what the plan can run on
    examples = subjects
        .map { meta, files -> [meta.dataset, [id: meta.id, ndim: meta.ndim, image: files.find { !it.name.contains('labels') }], meta.modalities] }
        .groupTuple()
        .map { name, items, mods ->
            // the example: the image of the first subject (by id) of the highest dimensionality
            def top = items.findAll { it.ndim == items*.ndim.max() }.sort { it.id }[0]
            [name: name, image: top.image, modalities: mods.flatten().unique().sort(), ndims: items*.ndim.unique().sort()] }
        .toSortedList { a, b -> a.name <=> b.name }
        .map { list -> [list*.name, list*.image, list*.modalities, list*.ndims] }
    PLAN(papers, examples, launch.plan_args)
    plan = PLAN.out.plan

    // training subjects of each (dataset, ndim), sorted: stable -resume hashes
    train_sets = subjects.filter { meta, files -> meta.split == 'train' }
        .map { meta, files -> [[meta.dataset, meta.ndim], meta.stem ?: meta.id, files] }
        .groupTuple()
        .map { key, ids, files -> [key, ids.sort(), files.flatten().sort { it.name }] }
    TRAIN_MODELS(plan, train_sets, weights)
    // the paper protocols' pairs (a task's `pairs`), beside each dataset's own pairs (key '')
    TASK_PAIRS(
        planRows(plan, 'registrations.csv').filter { it.pairs }.map { [it.dataset, it.pairs] }.unique()
            .combine(PREPARE_DATA.out.sheets, by: 0)
            .map { dataset, pairs, sheet -> [dataset, pairs, sheet, file("${projectDir}/experiments/pairs/${pairs.tokenize('/')[0].replace('-', '_')}.yaml", checkIfExists: true)] }
    )
    all_pairs = PREPARE_DATA.out.pairs.map { dataset, csv -> [dataset, '', csv] }.mix(TASK_PAIRS.out.csv)
    REGISTER_EVALUATE(plan, TRAIN_MODELS.out.models, subjects, all_pairs, PREPARE_DATA.out.label_names)

    // computed figures, on the moving and fixed image of the first test subject of their dataset
    first_test = subjects.filter { meta, files -> meta.split == 'test' }
        .map { meta, files -> [[meta.dataset, meta.ndim], meta.id, files] }
        .groupTuple()
        .map { key, ids, files -> [key, files[ids.indexOf(ids.min())]] }
    figures = planRows(plan, 'figures.csv').unique { it.figure }.combine(plan)
        .map { r, dir -> [r.figure, [[id: r.figure, function: r.function, dataset: r.dataset, ndim: r.ndim as int,
                                      moving: r.moving, fixed: r.fixed], dir.resolve("configs/${r.config}")], parseNeeds(r.needs)] }
    FIGURE(
        resolveNeeds(figures, TRAIN_MODELS.out.stages, weights)
            .map { id, payload, keys, files -> def (meta, config) = payload; [[meta.dataset, meta.ndim], meta, config, keys, files] }
            .combine(first_test, by: 0)
            .map { key, meta, config, keys, files, test -> [meta, config, pick(test, meta.moving), pick(test, meta.fixed), keys, files] }
    )

    // each paper's tables and figures (sorted inputs: -resume finds the task again)
    registrations = REGISTER_EVALUATE.out.registrations
    main_names = PREPARE_DATA.out.label_names.filter { dataset, names -> dataset == datasets[0].name }.map { dataset, names -> names }.first()
    // every preprocessed file with its dataset, in one sorted order: ARTIFACTS stages file k in images/k/
    // and names its dataset on line k of a manifest (two datasets may hold subjects of the same name)
    staged_images = subjects.flatMap { meta, files -> files.collect { f -> [dataset: meta.dataset, file: f] } }
        .toSortedList { a, b -> (a.dataset <=> b.dataset) ?: (a.file.name <=> b.file.name) ?: (a.file.toString() <=> b.file.toString()) }
        .map { items -> [items*.dataset, items*.file] }
    ARTIFACTS(
        Channel.fromList(papers.collect { [it.baseName, it] }),
        plan,
        REGISTER_EVALUATE.out.metrics.collect(sort: true).ifEmpty([]),
        registrations.map { meta, reg, m, f, ml, fl -> reg }.collect(sort: true).ifEmpty([]),
        staged_images,
        FIGURE.out.figure.map { id, dir -> dir }.collect(sort: true).ifEmpty([]),
        main_names
    )

    // the main path's table and the report
    main_metrics = REGISTER_EVALUATE.out.metrics.filter { it.name.startsWith('main__') }
    TABULATE(main_metrics.collect(sort: true).ifEmpty([]))
    // the software each process's tasks used: every module emits `versions` [process, run.json]
    // (REPORT's own run.json is beside the page: it reads this file, so it cannot be in it)
    versions = PREPARE_DATA.out.versions.mix(PLAN.out.versions, TRAIN_MODELS.out.versions, TASK_PAIRS.out.versions,
                                             FIGURE.out.versions, ARTIFACTS.out.versions, TABULATE.out.versions,
                                             REGISTER_EVALUATE.out.versions)
    main_labels = planRows(plan, 'registrations.csv').filter { it.experiment == 'main' }.map { it.label }.toList().map { [it] }
    REPORT(
        TABULATE.out.tables,
        registrations.map { meta, reg, m, f, ml, fl -> [meta.label, reg] }.combine(main_labels)
            .filter { label, reg, labels -> label in labels }.map { label, reg, labels -> reg }
            .collect(sort: true).ifEmpty([]),
        subjects.flatMap { meta, files -> files }.mix(PREPARE_DATA.out.qc).collect(sort: true),
        main_names,
        ARTIFACTS.out.artifacts.collect(sort: true).ifEmpty([]),
        Channel.value(provenanceFile(datasets)),
        softwareVersions(versions, params.outdir)
    )

    emit:
    report = REPORT.out.html
}

// what the report states about the results: code version, command line, profile, every parameter,
// Nextflow version, and where the trace is (pipeline_info/). Written at launch beside the trace,
// so `make report` finds it again. Only what decides the results goes in (no run name, start time or
// -resume flag: pipeline_info/runs.tsv has those per launch), so a -resume with nothing changed
// writes the same file and takes the report from the cache too.
def provenanceFile(datasets) {
    def git = { List args ->
        try { def p = (['git', '-C', "${projectDir}"] + args).execute(); def out = p.text.trim(); p.waitFor(); p.exitValue() == 0 ? out : null }
        catch (Exception e) { null } }
    def changed = git(['status', '--porcelain', '--untracked-files=no'])
    def info = file("${params.outdir}/pipeline_info")
    def meta = [git_commit: workflow.commitId ?: git(['rev-parse', 'HEAD']),
                git_dirty: changed == null ? null : (changed ? "yes (${changed.readLines().size()} changed file(s))" : 'no'),
                command_line: workflow.commandLine.replaceAll(/ -resume( [0-9a-f-]{36}| [a-z]+_[a-z]+)?/, ''),
                profile: workflow.profile, launch_dir: workflow.launchDir?.toString(), work_dir: workflow.workDir?.toString(),
                container_engine: workflow.containerEngine, nextflow: nextflow.version?.toString(),
                pipeline_info: info.toAbsolutePath().toString(),
                params: params.collectEntries { k, v -> [k, v == null || v instanceof Number || v instanceof Boolean ? v : v.toString()] },
                // what each user dataset's adapter left out (`diffreg dataset` writes skipped.csv beside the sheet)
                skipped: datasets.findAll { it.sheet }.collectEntries { d ->
                    def f = file(d.sheet.toString()).parent.resolve('skipped.csv')
                    [d.name, f.exists() ? f.splitCsv(header: true).collect { [it.item, it.reason] } : null] }]
    info.mkdirs()
    def out = info.resolve('provenance.json')
    def text = groovy.json.JsonOutput.prettyPrint(groovy.json.JsonOutput.toJson(meta)) + '\n'
    // rewritten only when it changed: Nextflow hashes the file by its time stamp (REPORT's cache)
    if (!out.exists() || out.text != text) out.text = text
    return out
}
