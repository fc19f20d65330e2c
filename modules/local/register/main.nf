// Registers one pair with a trained model: displacement, warped image and labels, run.json.
process REGISTER {
    tag "${meta.label} ${meta.id}"
    label 'process_gpu'

    input:
    tuple val(meta), path(moving), path(fixed), path(moving_labels), path(fixed_labels), path(model)

    output:
    tuple val(meta), path("${meta.label}__${meta.id}"), path(moving), path(fixed), path(moving_labels), path(fixed_labels), emit: registration

    script:
    def args = task.ext.args ?: ''
    """
    diffreg register --model ${model} --name '${meta.label}' --pair ${meta.id} --moving ${moving} --fixed ${fixed} \\
        --moving-labels ${moving_labels} --fixed-labels ${fixed_labels} \\
        --threads ${task.cpus} ${args} --out '${meta.label}__${meta.id}'
    """

    stub:
    """
    mkdir -p '${meta.label}__${meta.id}' && touch '${meta.label}__${meta.id}'/{disp,warped,warped_labels}.nii.gz
    echo '{}' > '${meta.label}__${meta.id}/run.json'
    """
}
