// A paper's tables (ours beside the paper's numbers), figures and claim checks, for the report.
process EXPERIMENT_ARTIFACTS {
    tag "${name}"
    label 'process_single'

    input:
    val name
    path experiment
    path plan
    path metrics, stageAs: 'metrics/*'
    path registrations, stageAs: 'registrations/*'
    path images, stageAs: 'images/?/*'
    path figures, stageAs: 'figures'
    path label_names

    output:
    path "${name}"     , emit: artifacts
    path 'versions.yml', emit: versions

    script:
    def names = label_names.name != 'NO_FILE' ? "--label-names ${label_names}" : ''
    """
    diffreg experiment-artifacts --experiment ${experiment} --plan ${plan}/uses.csv --metrics metrics/* \
        --registrations registrations/* --images-dir images \$([ -d figures ] && echo --figures figures) ${names} --out ${name}
    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        diffreg: \$(diffreg --version | cut -d" " -f2)
    END_VERSIONS
    """

    stub:
    """
    mkdir -p ${name} && echo '{"sections": []}' > ${name}/index.json
    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        diffreg: \$(diffreg --version | cut -d" " -f2)
    END_VERSIONS
    """
}
