#!/usr/bin/env node
'use strict';
/*
 * Test helper: edit the first document of a YAML manifest in place with a
 * JavaScript statement, to make deliberately broken copies.
 *
 *   node mutate.js FILE 'c("dotproxy").securityContext.capabilities.add = ["NET_ADMIN"]'
 *
 * In the statement, `doc` is the document, `spec` its pod spec (if any),
 * c(name) a container (init or regular) by name, rename(obj, from, to) renames
 * a key keeping its value.
 */
const fs = require('fs');
const yaml = require('js-yaml');

const [file, stmt] = process.argv.slice(2);
if (!file || !stmt) {
	process.stderr.write('usage: mutate.js FILE STATEMENT\n');
	process.exit(2);
}
const docs = yaml.loadAll(fs.readFileSync(file, 'utf8'));
const doc = docs[0];
const spec = doc.kind === 'Pod' ? doc.spec :
    (doc.spec && doc.spec.template ? doc.spec.template.spec : undefined);
function c(name) {
	const all = [...(spec.initContainers || []), ...(spec.containers || [])];
	const x = all.find((k) => k.name === name);
	if (!x)
		throw new Error(`no container ${name}`);
	return x;
}
function rename(obj, from, to) {
	if (!(from in obj))
		throw new Error(`no key ${from}`);
	obj[to] = obj[from];
	delete obj[from];
}
/* eslint-disable-next-line no-new-func */
new Function('doc', 'spec', 'c', 'rename', stmt)(doc, spec, c, rename);
fs.writeFileSync(file, docs.map((d) => yaml.dump(d)).join('---\n'));
