// The plan of the whole run: every pretraining, training, registration, evaluation and figure of
// the main path and of each paper's experiment YAML (docs/engine.md lists the files).
process PLAN {
    label 'process_single'

    input:
    path papers, stageAs: 'papers/*'
    tuple val(names), path(examples, stageAs: 'examples/?/*'), val(modalities), val(ndims)
    val args      // --profile, --given and --main-* flags, built by the workflow

    output:
    path 'plan', emit: plan
    tuple val("${task.process}"), path('plan/run.json'), emit: versions

    script:
    def images = examples instanceof List ? examples : [examples]
    def datasets = [names, images, modalities].transpose()
        .collect { n, img, mods -> "--dataset ${n} ${img} '${mods.join(',') ?: '-'}'" }.join(' ')
    // 3D datasets that also gave 2D slices (PREPARE_DATA: toy, and those a 2D task names)
    def sliced = [names, ndims].transpose().findAll { n, d -> d.size() > 1 }.collect { it[0] }
    def yamls = papers instanceof List ? papers : (papers ? [papers] : [])
    """
    diffreg plan ${yamls ? '--papers ' + yamls.join(' ') : ''} ${datasets} ${sliced ? '--sliced ' + sliced.join(',') : ''} ${args} --out plan
    """

    stub:
    def dims = [names, ndims].transpose().collect { n, d -> "--ndims ${n}=${d.join(',')}" }.join(' ')
    def yamls = papers instanceof List ? papers : (papers ? [papers] : [])
    """
    diffreg plan ${yamls ? '--papers ' + yamls.join(' ') : ''} ${dims} ${args} --out plan
    """
}
