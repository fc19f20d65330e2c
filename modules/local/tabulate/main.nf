// Merges every metrics CSV into the tables (mean ± sd per method; the paper's column if given).
process TABULATE {
    label 'process_single'

    input:
    path metrics, stageAs: 'metrics/*'

    output:
    path 'tables'      , emit: tables
    tuple val("${task.process}"), path('tables/run.json'), emit: versions

    script:
    """
    diffreg tabulate ${metrics ? '--metrics metrics/*' : ''} --out-dir tables
    """

    stub:
    """
    mkdir -p tables && touch tables/table.csv tables/metrics_all.csv && echo '{}' > tables/run.json
    """
}
