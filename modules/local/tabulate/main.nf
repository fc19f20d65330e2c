// Merges every metrics CSV into the tables (mean ± sd per method; the paper's column if given).
process TABULATE {
    label 'process_single'

    input:
    path metrics, stageAs: 'metrics/*'

    output:
    path 'tables'      , emit: tables
    path 'versions.yml', emit: versions

    script:
    """
    diffreg tabulate --metrics metrics/* --out-dir tables
    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        diffreg: \$(diffreg --version | cut -d" " -f2)
    END_VERSIONS
    """

    stub:
    """
    mkdir -p tables && touch tables/table.csv tables/metrics_all.csv
    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        diffreg: \$(diffreg --version | cut -d" " -f2)
    END_VERSIONS
    """
}
