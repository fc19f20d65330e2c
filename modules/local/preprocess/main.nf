// One subject: affine alignment to the reference (ANTsPy), crop/pad, intensities to [0, 1].
// The reference is always passed: with --spacing in ext.args it only serves the alignment (the subject
// keeps its own field of view, cropped around its labels); a label lost on the way fails the task.
process PREPROCESS {
    tag "${meta.dataset} ${meta.id}"
    label 'process_single'

    input:
    tuple val(meta), path(images, stageAs: 'image?/*'), path(labels, stageAs: 'labels?/*'), path(reference, stageAs: 'reference/*')

    output:
    tuple val(meta), path('out/*.nii.gz'), emit: subject
    path 'out/*.png'                     , emit: qc, optional: true
    path 'out/run.json'                  , emit: manifest

    script:
    def args = task.ext.args ?: ''
    def names = (meta.modalities + meta.label_names).collect { "${meta.id}_${it}.nii.gz" }.join(' ')
    """
    diffreg preprocess --subject ${meta.id} --images ${images} --labels ${labels} \
        --reference ${reference} --threads ${task.cpus} --names ${names} --outdir out ${args}${meta.prealigned ? ' --prealigned' : ''}
    """

    stub:
    """
    mkdir -p out
    touch ${(meta.modalities + meta.label_names).collect { "out/${meta.id}_${it}.nii.gz" }.join(' ')}
    echo '{}' > out/run.json
    """
}
