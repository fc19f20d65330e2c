#!/usr/bin/env nextflow
/*
 * diffreg-nf: diffusion-model based deformable registration, reproduced.
 * Thin entry: print help or validate the parameters and the input, then run workflows/diffreg.nf.
 * Validation is our own (no nf-schema: plugins cannot be fetched offline) and runs before any task.
 */
nextflow.enable.dsl = 2

include { DIFFREG } from './workflows/diffreg'

import groovy.json.JsonSlurper

def schemaParams() {
    def schema = new JsonSlurper().parse(file("${projectDir}/nextflow_schema.json").toFile())
    def out = [:]
    schema['$defs'].each { key, group -> out[key] = group }
    return out
}

def helpText() {
    def lines = ["", "Usage: nextflow run main.nf -profile <test|standard|slurm,gpu|...> [--param value ...]", ""]
    schemaParams().each { key, group ->
        lines << "${group.title}:"
        group.properties.each { name, spec ->
            def dflt = spec.containsKey('default') ? " [default: ${spec.default}]" : ''
            lines << "  --${name.padRight(22)} ${spec.description}${dflt}"
        }
        lines << ''
    }
    return lines.join('\n')
}

def camelToSnake(String s) { s.replaceAll(/([A-Z])/, '_$1').toLowerCase().replace('-', '_') }

def validateParams() {
    def specs = [:]
    schemaParams().each { key, group -> specs.putAll(group.properties) }
    def unknown = params.keySet().findAll { !specs.containsKey(it) && !specs.containsKey(camelToSnake(it)) }
    if (unknown) {
        error "Unknown parameter(s): ${unknown.collect { '--' + it }.join(', ')} (see: nextflow run main.nf --help)"
    }
    specs.each { name, spec ->
        def v = params[name]
        if (v == null) return
        def types = spec.type instanceof List ? spec.type : [spec.type]
        def ok = types.any { t ->
            (t == 'string' && v instanceof CharSequence) ||
            (t == 'integer' && (v instanceof Integer || v instanceof Long)) ||
            (t == 'number' && v instanceof Number) ||
            (t == 'boolean' && v instanceof Boolean)
        }
        if (!ok) error "Parameter --${name}: expected ${types.findAll { it != 'null' }.join(' or ')}, got '${v}'"
    }
    if (!(params.toy_ndim in [2, 3])) error "Parameter --toy_ndim: must be 2 or 3, got ${params.toy_ndim}"
    if (!(params.device in ['auto', 'cpu', 'cuda'])) error "Parameter --device: must be auto, cpu or cuda, got '${params.device}'"
    if (!(params.experiment_profile in ['test', 'test_full', 'full'])) error "Parameter --experiment_profile: must be test, test_full or full, got '${params.experiment_profile}'"
    params.papers.toString().tokenize(',').collect { it.trim() }.findAll { it && it != 'none' }.each { paper ->
        if (!file("${projectDir}/experiments/${paper}.yaml").exists()) error "Parameter --papers: no experiments/${paper}.yaml (known: dgir)"
    }
    ['input', 'reference', 'label_names', 'dgir_checkpoint', 'dgir_vgg_weights', 'dgir_dino_weights', 'unigradicon_weights'].each { name ->
        if (params[name] && !file(params[name]).exists()) error "Parameter --${name}: file not found: ${params[name]}"
    }
}

// Deep samplesheet checks (readable images, shapes, NaN voxels, label values) by the package itself,
// on the head node, so that a malformed samplesheet stops the run before any task is submitted.
def validateSamplesheet(String path) {
    def cmd = ["${projectDir}/bin/diffreg", 'validate', '--input', path]
    def proc = cmd.execute()
    def err = new StringBuffer()
    proc.consumeProcessErrorStream(err)
    def out = proc.inputStream.text
    proc.waitFor()
    if (proc.exitValue() != 0) {
        def msg = err.toString().readLines().findAll { it.trim() }
        error "Samplesheet ${path}: ${msg ? msg[-1].replaceFirst(/^diffreg: error: /, '') : 'validation failed'}"
    }
}

workflow {
    if (params.help) {
        log.info helpText()
        return
    }
    validateParams()
    if (params.input) validateSamplesheet(params.input.toString())
    DIFFREG()
}

workflow.onComplete {
    if (workflow.success) {
        log.info "diffreg-nf done: report at ${file(params.outdir).toAbsolutePath()}/report/index.html"
    }
}
