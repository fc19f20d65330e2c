// Metrics of one registration (Dice per label, Jacobian statistics, runtime) as one long CSV.
process EVALUATE {
    tag "${meta.id} ${registration}"
    label 'process_single'

    input:
    tuple val(meta), path(registration), path(moving, stageAs: 'images/*'), path(fixed, stageAs: 'images/*'), path(moving_labels, stageAs: 'images/*'), path(fixed_labels, stageAs: 'images/*')
    path label_names

    output:
    path "${registration}.metrics.csv", emit: metrics
    path 'versions.yml'               , emit: versions

    script:
    def names = label_names.name != 'NO_FILE' ? "--label-names ${label_names}" : ''
    """
    diffreg evaluate --registration ${registration} --images-dir images ${names} \
        --experiment ${params.experiment} --dataset ${meta.dataset ?: 'toy'} --out ${registration}.metrics.csv
    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        diffreg: \$(diffreg --version | cut -d" " -f2)
    END_VERSIONS
    """

    stub:
    """
    echo 'experiment,artifact,method,dataset,pair,label,metric,value' > ${registration}.metrics.csv
    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        diffreg: \$(diffreg --version | cut -d" " -f2)
    END_VERSIONS
    """
}
