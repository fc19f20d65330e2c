/*
 * The plan's registration sets on their dataset's evaluation pairs: learned ones with their
 * trained model (REGISTER), classical ones with their preset (BASELINE); then each registration
 * is scored under the evaluation config of every experiment that uses it.
 */
include { REGISTER } from '../../../modules/local/register'
include { BASELINE } from '../../../modules/local/baseline'
include { EVALUATE } from '../../../modules/local/evaluate'
include { planRows; pairFiles } from '../utils'

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
                                       pairs: r.pairs ?: '']] }
        .unique { it[0] }.map { it[1] }
    pair_rows = pairs.flatMap { dataset, pairing, csv -> csv.splitCsv(header: true).collect { [[dataset, pairing], it] } }
    files_by_key = subjects.map { meta, files -> [[meta.dataset, meta.ndim, meta.id], files] }

    learned = pairFiles(sets.filter { it.kind == 'learned' }, pair_rows, files_by_key)
        .map { meta, m, f, ml, fl -> [meta.run, meta, m, f, ml, fl] }
        .combine(models, by: 0)
        .map { run, meta, m, f, ml, fl, model -> [meta, m, f, ml, fl, model] }
    REGISTER(learned)
    BASELINE(pairFiles(sets.filter { it.kind == 'classical' }, pair_rows, files_by_key))

    registrations = REGISTER.out.registration.mix(BASELINE.out.registration)
    evaluations = rows.combine(plan).map { r, dir -> [r.label, r.experiment, dir.resolve("configs/${r.eval_config}")] }
    EVALUATE(
        registrations.map { meta, reg, m, f, ml, fl -> [[meta.dataset, meta.ndim, meta.fixed_subject], meta, reg, m, f, ml, fl] }
            .combine(files_by_key, by: 0)     // the fixed subject's other frames (trajectory references), landmarks, RGB
            .map { key, meta, reg, m, f, ml, fl, ffiles -> [[meta.dataset, meta.ndim, meta.moving_subject], meta, reg, m, f, ml, fl, ffiles] }
            .combine(files_by_key, by: 0)     // the moving subject's landmarks and RGB version
            .map { key, meta, reg, m, f, ml, fl, ffiles, mfiles -> [meta.label, meta, reg, m, f, ml, fl, ffiles, mfiles] }
            .combine(evaluations, by: 0)
            .map { label, meta, reg, m, f, ml, fl, ffiles, mfiles, experiment, config -> [meta.dataset, meta + [experiment: experiment], reg, m, f, ml, fl, config, ffiles, mfiles] }
            .combine(label_names, by: 0)
            .map { dataset, meta, reg, m, f, ml, fl, config, ffiles, mfiles, names -> [meta, reg, m, f, ml, fl, config, names, ffiles, mfiles] }
    )

    emit:
    registrations                       // [meta, registration folder, moving, fixed, moving labels, fixed labels]
    evaluated = evaluations             // [label, experiment, eval config]
    metrics = EVALUATE.out.metrics      // <experiment>__<label>__<pair>.metrics.csv
}
