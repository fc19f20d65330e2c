// One training of a paper's experiment: a method with the settings of one table/figure row
// (configs/<run>.json from EXPERIMENT_PLAN); feature models and user weights staged by name.
process TRAIN_RUN {
    tag "${run}"
    label 'process_gpu'

    input:
    tuple val(run), val(method), val(moving_modality), val(fixed_modality), path(config), val(subjects), path(images, stageAs: 'data/*'), path(feature_model, stageAs: 'feature_model.pt')
    path vgg_weights, stageAs: 'vgg_weights.pth'
    path dino_weights, stageAs: 'dino_weights.pth'

    output:
    tuple val(run), path('model'), emit: model
    path 'versions.yml'          , emit: versions

    script:
    """
    diffreg train --method ${method} --config ${config} --data-dir data --subjects ${subjects.join(',')} \
        --moving-modality ${moving_modality} --fixed-modality ${fixed_modality} \
        --device ${params.device} --threads ${task.cpus} --seed ${params.seed} --out model
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
