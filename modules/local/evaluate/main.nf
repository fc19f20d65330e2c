// Metrics of the registration sets of one experiment on one dataset, each set under its own
// evaluation config (label unions, metric list, experiment and dataset columns), as one long CSV per
// set. images/: every file of the sets' moving and fixed subjects, where `diffreg evaluate` finds by
// name the images and labels run.json names, a trajectory's reference frames (evaluation config
// `trajectory`), landmarks and RGB versions (`landmarks`, `score_on`).
process EVALUATE {
    tag "${meta.experiment} ${meta.dataset} (${meta.sets.size()} sets)"
    label 'process_single'

    input:
    tuple val(meta), path(registrations, stageAs: 'registrations/*'), path(images, stageAs: 'images/*'), path(configs, stageAs: 'configs/*'), path(label_names)

    output:
    path "*.metrics.csv", emit: metrics
    tuple val("${task.process}"), path('*.metrics.run.json'), emit: versions

    script:
    def names = label_names.name != 'NO_FILE' ? "--label-names ${label_names}" : ''
    def quote = { v -> '"' + v.toString().replace('"', '""') + '"' }
    def rows = meta.sets.collect { s -> [s.label, "configs/${s.config}", "${meta.experiment}__${s.label}.metrics.csv"].collect(quote).join(',') }
    """
    cat > sets.csv <<'SETS'
label,config,out
${rows.join('\n')}
SETS
    diffreg evaluate --registration registrations --images-dir images ${names} --sets sets.csv
    """

    stub:
    def outs = meta.sets.collect { s -> "'${meta.experiment}__${s.label}.metrics.csv'" }.join(' ')
    """
    for f in ${outs}; do echo 'experiment,artifact,method,dataset,pair,label,metric,value' > "\$f"; echo '{}' > "\${f%.csv}.run.json"; done
    """
}
