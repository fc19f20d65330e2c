// Metrics of one registration set under one experiment's evaluation config (label unions, metric
// list, experiment and dataset columns) as one long CSV. images/: every file of the set's moving and
// fixed subjects, where `diffreg evaluate` finds by name the images and labels run.json names, a
// trajectory's reference frames (evaluation config `trajectory`), landmarks and RGB versions
// (`landmarks`, `score_on`).
process EVALUATE {
    tag "${meta.experiment} ${meta.label} (${registrations instanceof List ? registrations.size() : 1} pairs)"
    label 'process_single'

    input:
    tuple val(meta), path(registrations, stageAs: 'registrations/*'), path(images, stageAs: 'images/*'), path(config), path(label_names)

    output:
    path "${meta.experiment}__${meta.label}.metrics.csv", emit: metrics

    script:
    def names = label_names.name != 'NO_FILE' ? "--label-names ${label_names}" : ''
    """
    diffreg evaluate --registration registrations --images-dir images ${names} --config ${config} \\
        --out '${meta.experiment}__${meta.label}.metrics.csv'
    """

    stub:
    """
    echo 'experiment,artifact,method,dataset,pair,label,metric,value' > '${meta.experiment}__${meta.label}.metrics.csv'
    """
}
