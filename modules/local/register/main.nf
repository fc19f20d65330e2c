// Registers one test pair with a trained model: displacement, warped image and labels, run.json.
process REGISTER {
    tag "${method} ${meta.id}"
    label 'process_gpu'

    input:
    tuple val(meta), path(moving), path(fixed), path(moving_labels), path(fixed_labels), val(method), path(model)

    output:
    tuple val(meta), path("${method}__${meta.id}"), path(moving), path(fixed), path(moving_labels), path(fixed_labels), emit: registration
    path 'versions.yml', emit: versions

    script:
    """
    diffreg register --model ${model} --name ${method} --pair ${meta.id} --moving ${moving} --fixed ${fixed} \
        --moving-labels ${moving_labels} --fixed-labels ${fixed_labels} \
        --device ${params.device} --threads ${task.cpus} --seed ${params.seed} --out ${method}__${meta.id}
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
