// Affine alignment of one subject to the reference (ANTsPy), crop/pad, intensities to [0, 1].
process PREPROCESS {
    tag "${meta.id}"
    label 'process_single'

    input:
    tuple val(meta), path(images, stageAs: 'image?/*'), path(labels, stageAs: 'labels?/*')
    path reference, stageAs: 'reference/*'

    output:
    tuple val(meta), path('out/*.nii.gz'), emit: subject
    path 'out/*.png'                     , emit: qc, optional: true
    path 'out/run.json'                  , emit: manifest
    path 'versions.yml'                  , emit: versions

    script:
    def args = task.ext.args ?: ''
    def names = (meta.modalities + meta.label_names).collect { "${meta.id}_${it}.nii.gz" }.join(' ')
    def shape = params.crop_shape ? "--shape ${params.crop_shape.toString().replace(',', ' ')}" : ''
    """
    diffreg preprocess --subject ${meta.id} --images ${images} --labels ${labels} \
        --reference ${reference} \
        --transform ${params.affine} ${shape} --threads ${task.cpus} --seed ${params.seed} \
        --names ${names} --outdir out ${args}
    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        diffreg: \$(diffreg --version | cut -d" " -f2)
    END_VERSIONS
    """

    stub:
    """
    mkdir -p out
    touch ${(meta.modalities + meta.label_names).collect { "out/${meta.id}_${it}.nii.gz" }.join(' ')}
    echo '{}' > out/run.json
    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        diffreg: \$(diffreg --version | cut -d" " -f2)
    END_VERSIONS
    """
}
