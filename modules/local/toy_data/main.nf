// Makes the embedded dataset: a population of subjects from anatomy shipped inside PyPI packages.
process TOY_DATA {
    tag "n=${n_subjects} size=${size} ${ndim}D"
    label 'process_single'

    input:
    val n_subjects
    val size
    val ndim
    val seed

    output:
    path 'toy/samplesheet.csv', emit: samplesheet
    path 'toy/labels.json'    , emit: label_names
    path 'toy/*.nii.gz'       , emit: images
    path 'toy/run.json'       , emit: manifest

    script:
    """
    diffreg toy-data --outdir toy --n-subjects ${n_subjects} --size ${size} --ndim ${ndim} --seed ${seed}
    """

    stub:
    """
    mkdir -p toy
    echo 'subject,split,labels,image_nbe,image_be,image_t2' > toy/samplesheet.csv
    for s in sub-001:train sub-002:train sub-003:test sub-004:test; do
        id=\${s%%:*}
        touch toy/\${id}_nbe.nii.gz toy/\${id}_be.nii.gz toy/\${id}_t2.nii.gz toy/\${id}_labels.nii.gz
        echo "\${id},\${s##*:},\${id}_labels.nii.gz,\${id}_nbe.nii.gz,\${id}_be.nii.gz,\${id}_t2.nii.gz" >> toy/samplesheet.csv
    done
    echo '{"0": "background"}' > toy/labels.json
    echo '{}' > toy/run.json
    """
}
