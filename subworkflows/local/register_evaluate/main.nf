/*
 * The plan's registration sets on their dataset's evaluation pairs: learned ones with their
 * trained model (REGISTER), classical ones with their preset (BASELINE); then each registration
 * is scored under the evaluation config of every experiment that uses it.
 */
include { REGISTER } from '../../../modules/local/register'
include { BASELINE } from '../../../modules/local/baseline'
include { EVALUATE } from '../../../modules/local/evaluate'
include { planRows; pairFiles; stagedOnce } from '../utils'

workflow REGISTER_EVALUATE {
    take:
    plan
    models         // [run, model folder]
    subjects       // [meta, files]
    pairs          // [dataset, pairing ('' = the dataset's own pairs), pairs.csv]
    label_names    // [dataset, labels.json or NO_FILE]

    main:
    rows = planRows(plan, 'registrations.csv')
    // one registration per label, whichever experiments use it
    sets = rows.map { r -> [r.label, [label: r.label, kind: r.kind, run: r.run, method: r.method, preset: r.preset,
                                       dataset: r.dataset, ndim: r.ndim as int, moving: r.moving, fixed: r.fixed,
                                       pairs: r.pairs ?: '', settings: r.settings ?: '']] }
        .unique { it[0] }.map { it[1] }
    pair_rows = pairs.flatMap { dataset, pairing, csv -> csv.splitCsv(header: true).collect { [[dataset, pairing], it] } }
    files_by_key = subjects.map { meta, files -> [[meta.dataset, meta.ndim, meta.id], files] }

    // learned sets: one REGISTER task per set (the model loads once), pairs sorted (stable -resume hash)
    learned_pairs = pairFiles(sets.filter { it.kind == 'learned' }, pair_rows, files_by_key)
    learned_sets = learned_pairs
        .map { meta, m, f, ml, fl -> [meta.label, [meta, m, f, ml, fl]] }
        .groupTuple()
        .map { label, items ->
            def sorted = items.sort { it[0].id }
            def first = sorted[0][0]
            [first.run, first.subMap(['label', 'kind', 'run', 'method', 'preset', 'dataset', 'ndim', 'moving', 'fixed', 'pairs', 'settings']),
             sorted.collect { meta, m, f, ml, fl -> [id: meta.id, moving: m.name, fixed: f.name, moving_labels: ml?.name, fixed_labels: fl?.name] },
             stagedOnce(sorted.collect { it[1..4] }.flatten().findAll { it != null })] }
        .combine(models, by: 0)
        .combine(plan)     // the set's registration-only settings (plan configs/), if it has any
        .map { run, meta, pairs, images, model, dir ->
            [meta, pairs, images, model, meta.settings ? dir.resolve("configs/${meta.settings}") : file("${projectDir}/assets/NO_FILE")] }
    REGISTER(learned_sets)
    // back to one item per pair: its folder among the set's
    learned = learned_pairs.map { meta, m, f, ml, fl -> [meta.label, meta, m, f, ml, fl] }
        .combine(REGISTER.out.registration.map { label, dirs -> [label, [dirs].flatten()] }, by: 0)
        .map { label, meta, m, f, ml, fl, dirs -> [meta, dirs.find { it.name == "${label}__${meta.id}".toString() }, m, f, ml, fl] }
    classical_pairs = pairFiles(sets.filter { it.kind == 'classical' }, pair_rows, files_by_key)
    BASELINE(classical_pairs)
    // pairs per set, known once the data is prepared: a set's evaluation starts when its last pair is
    // registered, not when every set is
    set_sizes = learned_pairs.mix(classical_pairs).map { [it[0].label, 1] }.groupTuple().map { label, ones -> [label, ones.size()] }

    registrations = learned.mix(BASELINE.out.registration)
    evaluations = rows.combine(plan).map { r, dir -> [r.label, r.experiment, r.dataset, dir.resolve("configs/${r.eval_config}")] }
    // sets per (experiment, dataset), known from the plan: its evaluation starts when its last set is registered
    sets_per_eval = rows.map { r -> [[r.experiment, r.dataset], 1] }.groupTuple().map { key, ones -> [key, ones.size()] }
    // one EVALUATE task per (experiment, dataset): every set of it, each under its own evaluation config,
    // on every file of the sets' subjects (the fixed subject's other frames are a trajectory's
    // references; both subjects' landmarks and RGB versions). One task per experiment, not per set:
    // Python and torch start once (seconds each), and re-scoring never re-registers
    per_set = registrations.map { meta, reg, m, f, ml, fl -> [[meta.dataset, meta.ndim, meta.fixed_subject], meta, reg] }
        .combine(files_by_key, by: 0)
        .map { key, meta, reg, ffiles -> [[meta.dataset, meta.ndim, meta.moving_subject], meta, reg, ffiles] }
        .combine(files_by_key, by: 0)
        .map { key, meta, reg, ffiles, mfiles -> [meta.label, [meta, reg, ffiles + mfiles]] }
        .combine(set_sizes, by: 0)
        .map { label, item, n -> [groupKey(label, n), item] }
        .groupTuple()
        .map { key, items -> [key.toString(), items.collect { it[1] }, items.collect { it[2] }.flatten()] }
    EVALUATE(
        per_set.combine(evaluations, by: 0)
            .map { label, regs, images, experiment, dataset, config -> [[experiment, dataset], [label: label, config: config, regs: regs, images: images]] }
            .combine(sets_per_eval, by: 0)
            .map { key, set, n -> [groupKey(key, n), set] }
            .groupTuple(remainder: true)
            .map { key, sets ->
                def (experiment, dataset) = key.getGroupTarget()
                def sorted = sets.sort { it.label }
                [dataset, [experiment: experiment, dataset: dataset, sets: sorted.collect { [label: it.label, config: it.config.name] }],
                 sorted.collect { it.regs }.flatten().sort { it.name }, stagedOnce(sorted.collect { it.images }.flatten()),
                 stagedOnce(sorted.collect { it.config })] }
            .combine(label_names, by: 0)
            .map { dataset, meta, regs, images, configs, names -> [meta, regs, images, configs, names] }
    )

    emit:
    registrations                       // [meta, registration folder, moving, fixed, moving labels, fixed labels]
    evaluated = evaluations             // [label, experiment, dataset, eval config]
    metrics = EVALUATE.out.metrics.flatten()   // <experiment>__<label>.metrics.csv, one per set
    versions = REGISTER.out.versions.mix(BASELINE.out.versions, EVALUATE.out.versions)   // [process, run.json(s)]
}
