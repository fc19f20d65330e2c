// One pretraining stage a planned run depends on (a feature model, an autoencoder, a first-stage
// network), run only when some run needs it; the task hash is its config's.
process PRETRAIN {
    tag "${meta.id}"
    label 'process_gpu'

    input:
    tuple val(meta), path(config), val(subjects), path(images, stageAs: 'data/*')

    output:
    tuple val(meta.id), path("${meta.id}.pt"), emit: file
    tuple val("${task.process}"), path('run.json'), emit: versions

    script:
    def args = task.ext.args ?: ''
    def data = subjects ? "--data-dir data --subjects ${subjects.join(',')} --moving-modality ${meta.moving} --fixed-modality ${meta.fixed}" : ''
    """
    diffreg pretrain --stage ${meta.id} --kind ${meta.kind} --config ${config} ${data} \\
        --threads ${task.cpus} ${args} --out ${meta.id}.pt
    """

    stub:
    """
    touch ${meta.id}.pt && echo '{}' > run.json
    """
}
