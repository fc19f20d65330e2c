/*
 * The plan's pretraining stages and trainings: each stage runs only when a planned run needs it,
 * each training waits only for the files it depends on.
 */
include { PRETRAIN } from '../../../modules/local/pretrain'
include { TRAIN    } from '../../../modules/local/train'
include { planRows; parseNeeds; resolveNeeds } from '../utils'

workflow TRAIN_MODELS {
    take:
    plan         // the plan folder
    train_sets   // [[dataset, ndim], subject ids, files]
    weights      // user files by parameter name

    main:
    stages = planRows(plan, "stages.csv").map { r -> [[r.dataset, r.ndim ? r.ndim as int : 0], r] }
    PRETRAIN(
        stages.filter { key, r -> r.data == 'yes' }.combine(train_sets, by: 0)
            .map { key, r, ids, files -> [r, ids, files] }
            .mix(stages.filter { key, r -> r.data != 'yes' }.map { key, r -> [r, [], []] })
            .combine(plan)
            .map { r, ids, files, dir ->
                [[id: r.stage, kind: r.kind, moving: r.moving, fixed: r.fixed], dir.resolve("configs/${r.config}"), ids, files] }
    )

    trainings = planRows(plan, 'trainings.csv').combine(plan).map { r, dir ->
        def meta = [run: r.run, method: r.method, ndim: r.ndim as int, dataset: r.dataset, moving: r.train_moving, fixed: r.train_fixed,
                    seed_offset: (r.seed ?: '0') as int, atlas: r.atlas ?: '']
        [r.run, [meta, dir.resolve("configs/${r.config}")], parseNeeds(r.needs)]
    }
    TRAIN(
        resolveNeeds(trainings, PRETRAIN.out.file, weights)
            .map { run, payload, keys, files -> def (meta, config) = payload; [[meta.dataset, meta.ndim], meta, config, keys, files] }
            .combine(train_sets, by: 0)
            .map { key, meta, config, keys, files, ids, images -> [meta, config, ids, images, keys, files] }
    )

    emit:
    models = TRAIN.out.model       // [run, model folder]
    stages = PRETRAIN.out.file     // [stage id, file]
    versions = PRETRAIN.out.versions.mix(TRAIN.out.versions)   // [process, run.json]
}
