// Trains one learned method on the training subjects; prints iteration, loss and speed.
process TRAIN {
    tag "${method}"
    label 'process_gpu'

    input:
    val method
    path images, stageAs: 'data/*'
    val subjects

    output:
    tuple val(method), path('model'), emit: model
    path 'versions.yml'             , emit: versions

    script:
    def args = task.ext.args ?: ''
    // within-subject pairs (e.g. ED -> ES) when the evaluation pairs are within-subject
    def pairing = params.pair_scheme == 'intra' ? '--intra-subject' : ''
    // only the settings the user gave: otherwise each method keeps its paper defaults
    def overrides = [backbone: params.backbone, similarity: params.similarity, regulariser: params.regulariser,
                     'lambda-reg': params.lambda_reg, 'batch-size': params.batch_size, lr: params.learning_rate]
        .findAll { k, v -> v != null }.collect { k, v -> "--${k} ${v}" }.join(' ')
    """
    diffreg train --method ${method} --data-dir data --subjects ${subjects.join(',')} \
        --moving-modality ${params.moving_modality} --fixed-modality ${params.fixed_modality} \
        ${overrides} --iterations ${params.train_iterations} \
        --device ${params.device} --threads ${task.cpus} --seed ${params.seed} --out model ${pairing} ${args}
    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        diffreg: \$(diffreg --version | cut -d" " -f2)
    END_VERSIONS
    """

    stub:
    """
    mkdir -p model && touch model/model.pt && echo '{}' > model/run.json
    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        diffreg: \$(diffreg --version | cut -d" " -f2)
    END_VERSIONS
    """
}
