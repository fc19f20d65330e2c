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

// 'KEY=stage:ID;KEY=param:NAME' -> [[key: KEY, kind: 'stage', ref: ID], [key: KEY, kind: 'param', ref: NAME]]
def parseNeeds(text) {
    (text ?: '').tokenize(';').collect { item ->
        def (key, ref) = item.tokenize('=')
        def (kind, name) = ref.tokenize(':')
        [key: key, kind: kind, ref: name]
    }
}

/*
 * items: [id, payload, needs] -> [id, payload, keys, files]: each need resolved to a file, a
 * pretraining stage's output (stage_files: [stage id, file]) or the user's file of a parameter
 * (weights: name -> path). An item waits only for the stages it needs.
 */
def resolveNeeds(items, stage_files, weights) {
    def on_stages = items.flatMap { id, payload, needs ->
        def stages = needs.findAll { it.kind == 'stage' }
        stages.collect { need -> [need.ref, id, need.key, stages.size()] }
    }
    def staged = on_stages.combine(stage_files, by: 0)
        .map { ref, id, key, n, f -> [groupKey(id, n), [key: key, file: f]] }
        .groupTuple()
        .map { id, deps -> [id.toString(), deps.sort { it.key }] }
    def no_stage = items.filter { id, payload, needs -> !needs.any { it.kind == 'stage' } }.map { id, payload, needs -> [id, []] }
    return items.join(staged.mix(no_stage))
        .map { id, payload, needs, deps ->
            def all = deps + needs.findAll { it.kind == 'param' }.collect { need -> [key: need.key, file: file(weights[need.ref], checkIfExists: true)] }
            [id, payload, all*.key, all*.file]
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

/*
 * pipeline_info/software_versions.yml from versions: [process, run.json or a list of them], the
 * run.json each `diffreg` command writes anyway (io.RunManifest: python, torch, numpy, ..., diffreg
 * and its git commit). Read here, on the head node: no task starts for it. Per process (short name),
 * each program's distinct versions joined; a process whose run.json records none (a stub's '{}')
 * reads "not recorded". Emits the file once every task is done (none ran: a file of the workflow
 * line only; the run failed: nothing). Rewritten only when it changed: REPORT reads it, and
 * Nextflow hashes a file by its time stamp, so a -resume with nothing changed keeps REPORT cached.
 */
def softwareVersions(versions, outdir) {
    // a run that failed closes the channels too: no partial file then (nor a write on a full disk)
    versions.toList().filter { !workflow.session.isAborted() }.map { items ->
        def found = new TreeMap()      // process -> program -> versions, sorted
        items.each { process, files ->
            def programs = found.computeIfAbsent(process.toString().tokenize(':')[-1]) { new TreeMap() }
            [files].flatten().each { f ->
                def run = new groovy.json.JsonSlurper().parseText(f.text)
                def seen = (run.versions ?: [:]) + (run.git_commit ? [diffreg_commit: run.git_commit] : [:])
                seen.each { k, v -> programs.computeIfAbsent(k) { new TreeSet() } << v.toString() }
            }
        }
        def quote = { v -> '"' + v.toString().replace('\\', '\\\\').replace('"', '\\"') + '"' }
        def lines = ['# software each process used, from the run.json of its tasks (distinct versions joined)']
        found.each { process, programs ->
            if (!programs) { lines << "${process}: not recorded"; return }
            lines << "${process}:"
            programs.each { k, vs -> lines << "  ${k}: ${quote(vs.join(', '))}" }
        }
        lines += ['Workflow:', "  Nextflow: ${quote(nextflow.version)}"]
        def out = file("${outdir}/pipeline_info/software_versions.yml")
        def text = lines.join('\n') + '\n'
        out.parent.mkdirs()
        if (!out.exists() || out.text != text) out.text = text
        return out
    }
}
