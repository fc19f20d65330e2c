// DGIR Fig. 1 (similarity heatmaps of one point) and Fig. 2 (feature correspondences) on two
// aligned images of one test subject (moving and fixed modality of the same subject).
process DGIR_FIGURES {
    tag "${meta.id}"
    label 'process_single'

    input:
    tuple val(meta), path(moving), path(fixed)
    path feature_model

    output:
    path 'figures'     , emit: figures
    path 'versions.yml', emit: versions

    script:
    """
    diffreg dgir-figures --moving ${moving} --fixed ${fixed} --feature-checkpoint ${feature_model} \
        --aligned --seed ${params.seed} --outdir figures
    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        diffreg: \$(diffreg --version | cut -d" " -f2)
    END_VERSIONS
    """

    stub:
    """
    mkdir -p figures
    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        diffreg: \$(diffreg --version | cut -d" " -f2)
    END_VERSIONS
    """
}
