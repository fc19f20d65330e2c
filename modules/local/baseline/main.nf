// Runs one classical baseline (ANTs SyN, NiftyReg, LDDMM, ...) on one pair, in our field convention.
process BASELINE {
    tag "${method} ${meta.id}"
    label 'process_low'

    input:
    tuple val(meta), path(moving), path(fixed), path(moving_labels), path(fixed_labels), val(method)

    output:
    tuple val(meta), path("${method}__${meta.id}"), path(moving), path(fixed), path(moving_labels), path(fixed_labels), emit: registration
    path 'versions.yml', emit: versions

    script:
    def args = task.ext.args ?: ''
    """
    diffreg baseline --method ${method} --pair ${meta.id} --moving ${moving} --fixed ${fixed} \
        --moving-labels ${moving_labels} --fixed-labels ${fixed_labels} \
        --threads ${task.cpus} --seed ${params.seed} --outdir ${method}__${meta.id} ${args}
    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        diffreg: \$(diffreg --version | cut -d" " -f2)
    END_VERSIONS
    """

    stub:
    """
    mkdir -p ${method}__${meta.id} && touch ${method}__${meta.id}/{disp,warped,warped_labels}.nii.gz
    echo '{}' > ${method}__${meta.id}/run.json
    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        diffreg: \$(diffreg --version | cut -d" " -f2)
    END_VERSIONS
    """
}
