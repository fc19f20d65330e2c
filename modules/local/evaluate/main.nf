// Metrics of one registration under one experiment's evaluation config (label unions, metric
// list, experiment and dataset columns) as one long CSV. refs/: every file of the fixed subject, where
// a trajectory's reference frames are found (evaluation config `trajectory`); refs/ and mrefs/ (the
// moving subject's files) hold both subjects' landmarks and RGB versions (`landmarks`, `score_on`).
process EVALUATE {
    tag "${meta.experiment} ${registration}"
    label 'process_single'

    input:
    tuple val(meta), path(registration), path(moving, stageAs: 'images/*'), path(fixed, stageAs: 'images/*'), path(moving_labels, stageAs: 'images/*'), path(fixed_labels, stageAs: 'images/*'), path(config), path(label_names), path(refs, stageAs: 'refs/*'), path(mrefs, stageAs: 'mrefs/*')

    output:
    path "${meta.experiment}__${registration}.metrics.csv", emit: metrics

    script:
    def names = label_names.name != 'NO_FILE' ? "--label-names ${label_names}" : ''
    """
    diffreg evaluate --registration '${registration}' --images-dir images refs mrefs ${names} --config ${config} \\
        --out '${meta.experiment}__${registration}.metrics.csv'
    """

    stub:
    """
    echo 'experiment,artifact,method,dataset,pair,label,metric,value' > '${meta.experiment}__${registration}.metrics.csv'
    """
}
