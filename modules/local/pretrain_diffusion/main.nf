// The offline diffusion feature model: a small ADM U-Net trained (DDPM) on natural photographs
// shipped in PyPI packages. pretrain-diffusion keeps a cache keyed by its configuration, so a
// new work directory does not train it again.
process PRETRAIN_DIFFUSION {
    label 'process_gpu'

    input:
    path plan

    output:
    path 'feature_model.pt', emit: checkpoint
    path 'run.json'        , emit: log
    path 'versions.yml'    , emit: versions

    script:
    """
    diffreg pretrain-diffusion \$(cat ${plan}/pretrain_args.txt) --device ${params.device} \
        --threads ${task.cpus} --seed ${params.seed} --out feature_model.pt
    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        diffreg: \$(diffreg --version | cut -d" " -f2)
    END_VERSIONS
    """

    stub:
    """
    touch feature_model.pt && echo '{}' > run.json
    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        diffreg: \$(diffreg --version | cut -d" " -f2)
    END_VERSIONS
    """
}
