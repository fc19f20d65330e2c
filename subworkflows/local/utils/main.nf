/*
 * Functions shared by the workflows: picking a subject's files by modality, reading the plan's
 * CSV files, and staging the files a planned task depends on. Written once, used everywhere.
 */


// a subject's image of one modality (files are named <stem>_<modality>.nii.gz)
def pick(files, suffix) { files.find { it.name.endsWith("_${suffix}.nii.gz") } }

// a frame's own label map if the subject has one per modality, else the subject's
def pickLabels(files, modality) { pick(files, "${modality}_labels") ?: pick(files, 'labels') }

// rows of one CSV of the plan folder, as maps
def planRows(plan, name) { plan.flatMap { dir -> dir.resolve(name).splitCsv(header: true) } }

// 'KEY=stage:ID;KEY=param:NAME' -> [[KEY, 'stage', ID], [KEY, 'param', NAME]]
def parseNeeds(text) {
    (text ?: '').tokenize(';').collect { item ->
        def (key, ref) = item.tokenize('=')
        def (kind, name) = ref.tokenize(':')
        [key, kind, name]
    }
}

/*
 * items: [id, payload, needs] -> [id, payload, keys, files]: each need resolved to a file, a
 * pretraining stage's output (stage_files: [stage id, file]) or the user's file of a parameter
 * (weights: name -> path). An item waits only for the stages it needs.
 */
def resolveNeeds(items, stage_files, weights) {
    def on_stages = items.flatMap { id, payload, needs ->
        def stages = needs.findAll { it[1] == 'stage' }
        stages.collect { key, kind, ref -> [ref, id, key, stages.size()] }
    }
    def staged = on_stages.combine(stage_files, by: 0)
        .map { ref, id, key, n, f -> [groupKey(id, n), [key, f]] }
        .groupTuple()
        .map { id, kfs -> [id.toString(), kfs.sort { it[0] }] }
    def no_stage = items.filter { id, payload, needs -> !needs.any { it[1] == 'stage' } }.map { id, payload, needs -> [id, []] }
    return items.join(staged.mix(no_stage))
        .map { id, payload, needs, kfs ->
            def all = kfs + needs.findAll { it[1] == 'param' }.collect { key, kind, ref -> [key, file(weights[ref], checkIfExists: true)] }
            [id, payload, all.collect { it[0] }, all.collect { it[1] }]
        }
}

// files staged together in one folder: each once, sorted by name (a stable -resume hash); two
// different files of one name would overwrite each other there, so they stop the run
def stagedOnce(files) {
    def byName = files.groupBy { it.name }
    def clash = byName.find { name, fs -> fs.collect { it.toString() }.unique().size() > 1 }
    if (clash) error "two different files named ${clash.key} in one task: ${clash.value.collect { it.toString() }.unique().join(', ')}"
    byName.keySet().sort().collect { byName[it][0] }
}

// registration sets x evaluation pairs of their dataset: [meta + pair, moving, fixed, moving labels, fixed labels]
def pairFiles(sets, pair_rows, files_by_key) {
    sets.map { meta -> [[meta.dataset, meta.pairs ?: ''], meta] }
        .combine(pair_rows, by: 0)
        .map { key, meta, row -> [[meta.dataset, meta.ndim, row.moving_subject], meta, row] }
        .combine(files_by_key, by: 0)
        .map { key, meta, row, mfiles -> [[meta.dataset, meta.ndim, row.fixed_subject], meta, row, mfiles] }
        .combine(files_by_key, by: 0)
        .map { key, meta, row, mfiles, ffiles ->
            // named by its subjects: the modalities are the registration set's, not the pairs file's
            def m = meta + [id: "${row.moving_subject}_to_${row.fixed_subject}".toString(), moving_subject: row.moving_subject, fixed_subject: row.fixed_subject]
            [m, pick(mfiles, meta.moving), pick(ffiles, meta.fixed), pickLabels(mfiles, meta.moving), pickLabels(ffiles, meta.fixed)]
        }
}
