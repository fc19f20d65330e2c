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

    script:
    def images = examples instanceof List ? examples : [examples]
    def datasets = [names, images, modalities].transpose()
        .collect { n, img, mods -> "--dataset ${n} ${img} '${mods.join(',') ?: '-'}'" }.join(' ')
    def yamls = papers instanceof List ? papers : (papers ? [papers] : [])
    """
    diffreg plan ${yamls ? '--papers ' + yamls.join(' ') : ''} ${datasets} ${args} --out plan
    """

    stub:
    def dims = [names, ndims].transpose().collect { n, d -> "--ndims ${n}=${d.join(',')}" }.join(' ')
    def yamls = papers instanceof List ? papers : (papers ? [papers] : [])
    """
    diffreg plan ${yamls ? '--papers ' + yamls.join(' ') : ''} ${dims} ${args} --out plan
    """
}
