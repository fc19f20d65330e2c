// A paper's experiment YAML -> the trainings, registration sets and table/figure rows to make.
process EXPERIMENT_PLAN {
    tag "${name}"
    label 'process_single'

    input:
    val name
    path experiment
    tuple path(example_image), val(modalities)
    val given

    output:
    path 'plan'        , emit: plan
    path 'versions.yml', emit: versions

    script:
    def data = params.input ? 'real' : 'toy'
    """
    diffreg experiment-plan --experiment ${experiment} --profile ${params.experiment_profile} --data ${data} \
        --example-image ${example_image} --modalities '${modalities.join(',')}' --given '${given}' --out plan
    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        diffreg: \$(diffreg --version | cut -d" " -f2)
    END_VERSIONS
    """

    stub:
    """
    diffreg experiment-plan --experiment ${experiment} --profile ${params.experiment_profile} \
        --ndims 2,3 --given '${given}' --out plan
    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        diffreg: \$(diffreg --version | cut -d" " -f2)
    END_VERSIONS
    """
}
