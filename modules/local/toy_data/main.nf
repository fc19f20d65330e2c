// Makes an embedded dataset (diffreg.data.standins): `toy` is the brain population of the main path;
// any other name is the stand-in of that name, made for a paper's task when no samplesheet gives it
// (its QC picture goes to the report).
process TOY_DATA {
    tag "${name} n=${n_subjects} size=${size} ${ndim}D"
    label 'process_single'

    input:
    tuple val(name), val(n_subjects), val(size), val(ndim), val(seed)

    output:
    tuple val(name), path("${name}/samplesheet.csv"), val(ndim), emit: samplesheet
    tuple val(name), path("${name}/labels.json")              , emit: label_names
    path "${name}/*.nii.gz"                                       , emit: images
    tuple val("${task.process}"), path("${name}/run.json")        , emit: versions
    path "qc/*_standin.png"                                          , emit: qc, optional: true
    tuple val(name), path("pairs_${name}/pairs.csv")          , emit: pairs, optional: true

    script:
    // its evaluation pairs here, not by MAKE_PAIRS (whose --moving_modality is the main path's), with the
    // scheme the stand-in declares (pair_scheme.txt: within a subject for frame / expression data, between
    // subjects otherwise); the subjects are what counts, each registration set picks its modalities
    def args = task.ext.args ?: ''
    if (name == 'toy') {   // the command (and files) of the brain population as they always were
        """
        diffreg toy-data --outdir toy --n-subjects ${n_subjects} --size ${size} --ndim ${ndim} --seed ${seed}
        """
    } else {
        """
        diffreg toy-data --dataset ${name} --qc qc --outdir ${name} --n-subjects ${n_subjects} --size ${size} --ndim ${ndim} --seed ${seed}
        mods=(\$(head -1 ${name}/samplesheet.csv | tr ',' '\\n' | sed -n 's/^image_//p'))
        diffreg make-pairs --input ${name}/samplesheet.csv --no-image-check --scheme \$(cat ${name}/pair_scheme.txt) \\
            --moving-modality \${mods[0]} --fixed-modality \${mods[1]:-\${mods[0]}} ${args} --out pairs_${name}/pairs.csv
        """
    }

    stub:
    if (name == 'toy') {
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
    } else {   // the real generator at its smallest: the layout differs per stand-in
        """
        diffreg toy-data --dataset ${name} --outdir ${name} --n-subjects 3 --size 32 --ndim ${ndim} --seed ${seed}
        mkdir -p pairs_${name} && echo 'pair_id,moving_subject,fixed_subject' > pairs_${name}/pairs.csv
        """
    }
}
