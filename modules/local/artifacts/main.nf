// One experiment's tables (ours beside the paper's numbers), figures and claim checks.
process ARTIFACTS {
    tag "${name}"
    label 'process_single'

    input:
    tuple val(name), path(experiment)
    path plan
    path metrics, stageAs: 'metrics/*'
    path registrations, stageAs: 'registrations/*'
    tuple val(image_datasets), path(images, stageAs: 'images/?/*')
    path figures, stageAs: 'figures/*'
    path label_names

    output:
    path "${name}", emit: artifacts
    tuple val("${task.process}"), path("${name}/run.json"), emit: versions

    script:
    def names = label_names.name != 'NO_FILE' ? "--label-names ${label_names}" : ''
    def manifest = image_datasets.withIndex().collect { d, i -> "${i + 1}\t${d}" }.join('\n')
    """
    printf '${manifest}\n' > images_datasets.tsv
    diffreg experiment-artifacts --experiment ${experiment} --name ${name} --uses ${plan}/uses.csv \\
        --metrics metrics/* --registrations registrations/* --images-dir images --images-datasets images_datasets.tsv \\
        \$(ls -d figures/* >/dev/null 2>&1 && echo --figures figures/*) --figures-csv ${plan}/figures.csv \\
        ${names} --out ${name}
    """

    stub:
    """
    mkdir -p ${name} && echo '{"sections": []}' > ${name}/index.json && echo '{}' > ${name}/run.json
    """
}
