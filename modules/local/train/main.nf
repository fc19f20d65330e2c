// One training of the plan: a method with one run's config on the training subjects of its
// dataset; the files it depends on (pretrained stages, user weights) staged as --dep KEY=PATH.
process TRAIN {
    tag "${meta.run}"
    label 'process_gpu'

    input:
    tuple val(meta), path(config), val(subjects), path(images, stageAs: 'data/*'), val(dep_keys), path(dep_files, stageAs: 'deps/?/*')

    output:
    tuple val(meta.run), path('model'), emit: model
    tuple val("${task.process}"), path('model/run.json'), emit: versions

    script:
    def args = task.ext.args ?: ''
    def files = dep_files instanceof List ? dep_files : [dep_files]
    def deps = [dep_keys, files].transpose().collect { k, f -> "--dep ${k}=${f}" }.join(' ')
    """
    diffreg train --method ${meta.method} --config ${config} --data-dir data --subjects ${subjects.join(',')} \\
        --moving-modality ${meta.moving} --fixed-modality ${meta.fixed} ${meta.atlas ? '--atlas-subject ' + meta.atlas : ''} ${deps} \\
        --threads ${task.cpus} ${args} --out model
    """

    stub:
    """
    mkdir -p model && touch model/model.pt && echo '{}' > model/run.json
    """
}
