// Runs one classical baseline (ANTs SyN, NiftyReg, LDDMM, ...) with a preset on one pair, in our field convention.
process BASELINE {
    tag "${meta.label} ${meta.id}"
    label 'process_low'

    input:
    tuple val(meta), path(moving), path(fixed), path(moving_labels), path(fixed_labels)

    output:
    tuple val(meta), path("${meta.label}__${meta.id}"), path(moving), path(fixed), path(moving_labels), path(fixed_labels), emit: registration
    tuple val("${task.process}"), path("${meta.label}__${meta.id}/run.json"), emit: versions

    script:
    def args = task.ext.args ?: ''
    def preset = meta.preset ? "--preset ${meta.preset}" : ''
    """
    diffreg baseline --method ${meta.method} ${preset} --name '${meta.label}' --pair ${meta.id} \\
        --moving ${moving} --fixed ${fixed} --moving-labels ${moving_labels} --fixed-labels ${fixed_labels} \\
        --threads ${task.cpus} ${args} --outdir '${meta.label}__${meta.id}'
    """

    stub:
    """
    mkdir -p '${meta.label}__${meta.id}' && touch '${meta.label}__${meta.id}'/{disp,warped,warped_labels}.nii.gz
    echo '{}' > '${meta.label}__${meta.id}/run.json'
    """
}
