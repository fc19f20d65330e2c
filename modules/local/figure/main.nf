// One computed figure of the plan (a function of the figure registry) on the moving and fixed
// image of one test subject; the files it depends on staged as --dep KEY=PATH.
process FIGURE {
    tag "${meta.id}"
    label 'process_single'

    input:
    tuple val(meta), path(config), path(moving), path(fixed), val(dep_keys), path(dep_files, stageAs: 'deps/?/*')

    output:
    tuple val(meta.id), path("${meta.id}"), emit: figure
    tuple val("${task.process}"), path("${meta.id}/run.json"), emit: versions

    script:
    def args = task.ext.args ?: ''
    def files = dep_files instanceof List ? dep_files : [dep_files]
    def deps = [dep_keys, files].transpose().collect { k, f -> "--dep ${k}=${f}" }.join(' ')
    """
    diffreg figure --function ${meta.function} --config ${config} --moving ${moving} --fixed ${fixed} \\
        ${deps} ${args} --outdir ${meta.id}
    """

    stub:
    """
    mkdir -p ${meta.id} && echo '{}' > ${meta.id}/run.json
    """
}
