//! Code generator: `avro/**/*.avsc` (the source of truth) -> Rust types and
//! self-contained ("inlined") schemas, written to `$OUT_DIR` and `include!`d by
//! the crate's per-context modules.
//!
//! Directory conventions, checked here (a violation fails the build):
//! - `avro/types/*.avsc`, `avro/<context>/types/*.avsc`: named types (records,
//!   enums) that other schemas reference by full name;
//! - `avro/records/*.avsc`: top-level records that are not events or commands
//!   (command outcomes, aggregate snapshots);
//! - `avro/<context>/events/*.avsc`: events, first field
//!   `{"name":"envelope","type":"com.quickstore.EventEnvelope"}`;
//! - `avro/<context>/commands/*.avsc`: commands, first field `envelope` of type
//!   `com.quickstore.CommandEnvelope`;
//! - `avro/history/`: published schema versions, read by the compatibility
//!   guard test, ignored here.
//!
//! One file per named type, file stem = record name, namespace
//! `com.quickstore` (shared) or `com.quickstore.<context>`. Types are
//! referenced by full name, never defined inline. Supported field types:
//! primitives (no `null` outside a union), `timestamp-millis` and other
//! logical types over a primitive, arrays, maps, named references and
//! `["null", T]` unions with `"default": null`.

use std::collections::{BTreeMap, HashSet};
use std::error::Error;
use std::fmt::Write as _;
use std::path::Path;
use std::{env, fs};

use serde_json::{Map, Value};

type Result<T, E = Box<dyn Error>> = std::result::Result<T, E>;

const ROOT_NS: &str = "com.quickstore";
const EVENT_ENVELOPE: &str = "com.quickstore.EventEnvelope";
const COMMAND_ENVELOPE: &str = "com.quickstore.CommandEnvelope";
/// The envelope field the hash chain blanks for the canonical bytes.
const HASH_FIELD: &str = "hash";
const CONTEXTS: [&str; 6] = [
    "catalog",
    "inventory",
    "orders",
    "payments",
    "deliveries",
    "customers",
];
const PRIMITIVES: [&str; 8] = [
    "null", "boolean", "int", "long", "float", "double", "bytes", "string",
];
const RUST_KEYWORDS: [&str; 38] = [
    "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum", "extern",
    "false", "fn", "for", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub",
    "ref", "return", "self", "Self", "static", "struct", "super", "trait", "true", "type",
    "unsafe", "use", "where", "while",
];

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    /// Referenced by other schemas only.
    Named,
    /// Top-level record that is not an event or command.
    Record,
    Event,
    Command,
}

#[derive(Debug)]
struct Def {
    full_name: String,
    name: String,
    namespace: String,
    kind: Kind,
    context: Option<String>,
    source: String,
    json: Map<String, Value>,
}

fn main() -> Result<()> {
    let manifest = env::var("CARGO_MANIFEST_DIR")?;
    let root = Path::new(&manifest).join("avro");
    let out = env::var("OUT_DIR")?;
    let out = Path::new(&out);

    let defs = load(&root)?;
    let gen = Generator { defs };
    gen.check_references()?;

    let mut modules: BTreeMap<String, String> = BTreeMap::new();
    modules.insert("common".into(), header());
    for ctx in CONTEXTS {
        modules.insert(ctx.into(), header());
    }
    for def in gen.defs.values() {
        let module = module_of(&def.namespace)?;
        let code = modules.entry(module).or_default();
        code.push_str(&gen.type_code(def)?);
    }
    for ctx in CONTEXTS {
        let code = modules.entry(ctx.into()).or_default();
        code.push_str(&gen.context_enum(ctx, Kind::Event)?);
        code.push_str(&gen.context_enum(ctx, Kind::Command)?);
    }
    for (module, code) in &modules {
        write_if_changed(&out.join(format!("{module}.rs")), code)?;
    }
    write_if_changed(&out.join("any.rs"), &gen.any_enums())?;
    write_if_changed(&out.join("defs.rs"), &gen.defs_table()?)?;
    Ok(())
}

/// The `codec::fast` writer and reader of an Avro primitive, and whether
/// the writer takes the value (a copy) rather than a reference; `None` for
/// a named type.
fn primitive_fns(avro: &str, source: &str) -> Result<Option<(&'static str, &'static str, bool)>> {
    Ok(Some(match avro {
        "boolean" => ("write_bool", "read_bool", true),
        "int" => ("write_int", "read_int", true),
        "long" => ("write_long", "read_long", true),
        "float" => ("write_float", "read_float", true),
        "double" => ("write_double", "read_double", true),
        "string" => ("write_str", "read_string", false),
        "bytes" => ("write_bytes", "read_bytes", false),
        "null" => {
            return Err(format!("avro/{source}: null is only supported in [\"null\", T]").into())
        }
        _ => return Ok(None),
    }))
}

/// The symbols of the enum `def`; `None` when it is not an enum.
fn enum_symbols(def: &Def) -> Result<Option<&Vec<Value>>> {
    if def.json.get("type").and_then(Value::as_str) != Some("enum") {
        return Ok(None);
    }
    def.json
        .get("symbols")
        .and_then(Value::as_array)
        .map(Some)
        .ok_or_else(|| format!("avro/{}: an enum needs \"symbols\"", def.source).into())
}

fn header() -> String {
    "// @generated by schemas/build.rs from schemas/avro/**/*.avsc. Do not edit.\n\n".to_owned()
}

fn write_if_changed(path: &Path, content: &str) -> Result<()> {
    if fs::read_to_string(path).ok().as_deref() != Some(content) {
        fs::write(path, content)?;
    }
    Ok(())
}

// ---------------------------------------------------------------- loading

fn load(root: &Path) -> Result<BTreeMap<String, Def>> {
    let mut defs = BTreeMap::new();
    let mut entries: Vec<_> = fs::read_dir(root)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        if !path.is_dir() {
            if name.ends_with(".md") {
                continue;
            }
            return Err(
                format!("avro/{name}: unexpected file (schemas live in sub-folders)").into(),
            );
        }
        println!("cargo:rerun-if-changed={}", path.display());
        match name.as_str() {
            "history" => {}
            "types" => load_dir(&path, &name, Kind::Named, None, &mut defs)?,
            "records" => load_dir(&path, &name, Kind::Record, None, &mut defs)?,
            ctx if CONTEXTS.contains(&ctx) => {
                let mut subs: Vec<_> = fs::read_dir(&path)?.collect::<Result<_, _>>()?;
                subs.sort_by_key(|e| e.file_name());
                for sub in subs {
                    let sub_name = sub.file_name().to_string_lossy().into_owned();
                    let kind = match sub_name.as_str() {
                        "types" => Kind::Named,
                        "events" => Kind::Event,
                        "commands" => Kind::Command,
                        other => {
                            return Err(format!(
                                "avro/{ctx}/{other}: unexpected (use types/, events/ or commands/)"
                            )
                            .into())
                        }
                    };
                    load_dir(
                        &sub.path(),
                        &format!("{ctx}/{sub_name}"),
                        kind,
                        Some(ctx),
                        &mut defs,
                    )?;
                }
            }
            other => {
                return Err(format!(
                    "avro/{other}: unexpected folder (not a context, types/, records/ or history/)"
                )
                .into())
            }
        }
    }
    Ok(defs)
}

fn load_dir(
    dir: &Path,
    rel: &str,
    kind: Kind,
    context: Option<&str>,
    defs: &mut BTreeMap<String, Def>,
) -> Result<()> {
    let expected_ns = match context {
        Some(ctx) => format!("{ROOT_NS}.{ctx}"),
        None => ROOT_NS.to_owned(),
    };
    let mut files: Vec<_> = fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    files.sort_by_key(|e| e.file_name());
    for file in files {
        let file_name = file.file_name().to_string_lossy().into_owned();
        let source = format!("{rel}/{file_name}");
        let Some(stem) = file_name.strip_suffix(".avsc") else {
            return Err(format!("avro/{source}: not an .avsc file").into());
        };
        let text = fs::read_to_string(file.path())?;
        let json: Value =
            serde_json::from_str(&text).map_err(|e| format!("avro/{source}: invalid JSON: {e}"))?;
        let Value::Object(json) = json else {
            return Err(format!("avro/{source}: a schema file must hold one JSON object").into());
        };
        let err = |msg: String| -> Box<dyn Error> { format!("avro/{source}: {msg}").into() };
        let ty = json.get("type").and_then(Value::as_str).unwrap_or("");
        if ty != "record" && ty != "enum" {
            return Err(err(format!("type must be record or enum, not {ty:?}")));
        }
        if kind != Kind::Named && ty != "record" {
            return Err(err(
                "events, commands and top-level records must be records".into(),
            ));
        }
        let name = json.get("name").and_then(Value::as_str).unwrap_or("");
        if name != stem {
            return Err(err(format!(
                "name {name:?} must equal the file name {stem:?}"
            )));
        }
        let namespace = json.get("namespace").and_then(Value::as_str).unwrap_or("");
        if namespace != expected_ns {
            return Err(err(format!(
                "namespace must be {expected_ns:?}, found {namespace:?}"
            )));
        }
        if matches!(kind, Kind::Event | Kind::Command) {
            let envelope = if kind == Kind::Event {
                EVENT_ENVELOPE
            } else {
                COMMAND_ENVELOPE
            };
            let first = json
                .get("fields")
                .and_then(Value::as_array)
                .and_then(|f| f.first());
            let ok = first.and_then(|f| f.get("name")).and_then(Value::as_str) == Some("envelope")
                && first.and_then(|f| f.get("type")).and_then(Value::as_str) == Some(envelope);
            if !ok {
                return Err(err(format!(
                    "the first field must be {{\"name\":\"envelope\",\"type\":\"{envelope}\"}}"
                )));
            }
            if json.get("aggregate").and_then(Value::as_str).is_none() {
                return Err(err(
                    "needs an \"aggregate\" attribute naming the aggregate type".into(),
                ));
            }
        }
        let full_name = format!("{namespace}.{name}");
        let def = Def {
            full_name: full_name.clone(),
            name: name.to_owned(),
            namespace: namespace.to_owned(),
            kind,
            context: context.map(str::to_owned),
            source,
            json,
        };
        if let Some(prev) = defs.insert(full_name.clone(), def) {
            return Err(format!(
                "{full_name} is defined twice (also in avro/{})",
                prev.source
            )
            .into());
        }
    }
    Ok(())
}

fn module_of(namespace: &str) -> Result<String> {
    if namespace == ROOT_NS {
        return Ok("common".into());
    }
    match namespace.strip_prefix("com.quickstore.") {
        Some(ctx) if CONTEXTS.contains(&ctx) => Ok(ctx.to_owned()),
        _ => Err(format!("namespace {namespace} is not com.quickstore[.<context>]").into()),
    }
}

fn full_name_of(name: &str, namespace: &str) -> String {
    if name.contains('.') {
        name.to_owned()
    } else {
        format!("{namespace}.{name}")
    }
}

fn pascal(s: &str) -> String {
    s.split(['_', '-', '.'])
        .filter(|p| !p.is_empty())
        .map(|p| {
            let lower = p.to_ascii_lowercase();
            let mut chars = lower.chars();
            match chars.next() {
                Some(c) => c.to_ascii_uppercase().to_string() + chars.as_str(),
                None => String::new(),
            }
        })
        .collect()
}

fn rust_ident(name: &str) -> String {
    if RUST_KEYWORDS.contains(&name) {
        format!("r#{name}")
    } else {
        name.to_owned()
    }
}

fn doc_lines(indent: &str, doc: Option<&str>) -> String {
    let mut out = String::new();
    if let Some(doc) = doc {
        for line in doc.lines() {
            if line.trim().is_empty() {
                let _ = writeln!(out, "{indent}///");
            } else {
                let _ = writeln!(out, "{indent}/// {line}");
            }
        }
    }
    out
}

fn raw_str(s: &str) -> String {
    let mut hashes = String::from("#");
    while s.contains(&format!("\"{hashes}")) {
        hashes.push('#');
    }
    format!("r{hashes}\"{s}\"{hashes}")
}

// ---------------------------------------------------------------- generation

/// The Rust shape of an Avro field type.
struct RustType {
    ty: String,
    /// `serde(with = ...)` module, for bytes.
    with: Option<&'static str>,
    optional: bool,
    has_float: bool,
}

struct Generator {
    defs: BTreeMap<String, Def>,
}

impl Generator {
    fn fields<'a>(&self, def: &'a Def) -> Result<&'a Vec<Value>> {
        def.json
            .get("fields")
            .and_then(Value::as_array)
            .ok_or_else(|| format!("avro/{}: a record needs \"fields\"", def.source).into())
    }

    /// The fields the generated struct of `def` holds, by name, in schema
    /// order: every field but an event's or command's `envelope` (the codec
    /// handles that one).
    fn struct_fields<'a>(&self, def: &'a Def) -> Result<Vec<(&'a str, &'a Value)>> {
        let mut fields = Vec::new();
        for field in self.fields(def)? {
            let name = field
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| format!("avro/{}: a field needs a name", def.source))?;
            if name == "envelope" && matches!(def.kind, Kind::Event | Kind::Command) {
                continue;
            }
            fields.push((name, field));
        }
        Ok(fields)
    }

    /// Every referenced name exists, no type is defined inline, no cycles.
    fn check_references(&self) -> Result<()> {
        for def in self.defs.values() {
            self.has_float(&def.full_name, &mut Vec::new())?;
            self.inlined(def)?;
        }
        Ok(())
    }

    fn has_float(&self, full_name: &str, stack: &mut Vec<String>) -> Result<bool> {
        if stack.iter().any(|s| s == full_name) {
            return Err(format!("recursive type {full_name} is not supported").into());
        }
        let def = self
            .defs
            .get(full_name)
            .ok_or_else(|| format!("unknown type {full_name}"))?;
        if def.json.get("type").and_then(Value::as_str) != Some("record") {
            return Ok(false);
        }
        stack.push(full_name.to_owned());
        let mut any = false;
        for field in self.fields(def)? {
            let ty = field.get("type").cloned().unwrap_or(Value::Null);
            if field.get("name").and_then(Value::as_str) == Some("envelope") {
                continue;
            }
            any |= self
                .rust_type(&ty, &def.namespace, stack, &def.source)?
                .has_float;
        }
        stack.pop();
        Ok(any)
    }

    fn rust_type(
        &self,
        ty: &Value,
        namespace: &str,
        stack: &mut Vec<String>,
        source: &str,
    ) -> Result<RustType> {
        let plain = |ty: &str, has_float: bool| RustType {
            ty: ty.to_owned(),
            with: None,
            optional: false,
            has_float,
        };
        match ty {
            Value::String(s) => Ok(match s.as_str() {
                "boolean" => plain("bool", false),
                "int" => plain("i32", false),
                "long" => plain("i64", false),
                "float" => plain("f32", true),
                "double" => plain("f64", true),
                "string" => plain("String", false),
                "bytes" => RustType {
                    ty: "Vec<u8>".into(),
                    with: Some("apache_avro::serde_avro_bytes"),
                    optional: false,
                    has_float: false,
                },
                "null" => {
                    return Err(
                        format!("avro/{source}: null is only supported in [\"null\", T]").into(),
                    )
                }
                name => {
                    let full = full_name_of(name, namespace);
                    let def = self
                        .defs
                        .get(&full)
                        .ok_or_else(|| format!("avro/{source}: unknown type {full}"))?;
                    RustType {
                        ty: format!("crate::{}::{}", module_of(&def.namespace)?, def.name),
                        with: None,
                        optional: false,
                        has_float: self.has_float(&full, stack)?,
                    }
                }
            }),
            Value::Array(variants) => {
                let is_optional = variants.len() == 2 && variants[0] == "null";
                if !is_optional {
                    return Err(format!(
                        "avro/{source}: only [\"null\", T] unions are supported, found {ty}"
                    )
                    .into());
                }
                let inner = self.rust_type(&variants[1], namespace, stack, source)?;
                if inner.optional {
                    return Err(format!("avro/{source}: nested optional in {ty}").into());
                }
                Ok(RustType {
                    ty: format!("Option<{}>", inner.ty),
                    with: inner.with.map(|_| "apache_avro::serde_avro_bytes_opt"),
                    optional: true,
                    has_float: inner.has_float,
                })
            }
            Value::Object(obj) => match obj.get("type").and_then(Value::as_str) {
                Some("array") => {
                    let items = obj.get("items").cloned().unwrap_or(Value::Null);
                    let inner = self.rust_type(&items, namespace, stack, source)?;
                    if inner.with.is_some() || inner.optional {
                        return Err(format!(
                            "avro/{source}: arrays of bytes or of optionals are not supported"
                        )
                        .into());
                    }
                    Ok(RustType {
                        ty: format!("Vec<{}>", inner.ty),
                        with: None,
                        optional: false,
                        has_float: inner.has_float,
                    })
                }
                Some("map") => {
                    let values = obj.get("values").cloned().unwrap_or(Value::Null);
                    let inner = self.rust_type(&values, namespace, stack, source)?;
                    if inner.with.is_some() || inner.optional {
                        return Err(format!(
                            "avro/{source}: maps of bytes or of optionals are not supported"
                        )
                        .into());
                    }
                    Ok(RustType {
                        ty: format!("std::collections::BTreeMap<String, {}>", inner.ty),
                        with: None,
                        optional: false,
                        has_float: inner.has_float,
                    })
                }
                Some("record" | "error" | "enum" | "fixed") => Err(format!(
                    "avro/{source}: define named types in their own file, not inline: {ty}"
                )
                .into()),
                Some(base) if PRIMITIVES.contains(&base) && base != "null" => {
                    if obj.get("logicalType").and_then(Value::as_str) == Some("decimal") {
                        return Err(format!("avro/{source}: decimal is not supported").into());
                    }
                    self.rust_type(&Value::from(base), namespace, stack, source)
                }
                _ => Err(format!("avro/{source}: unsupported type {ty}").into()),
            },
            _ => Err(format!("avro/{source}: unsupported type {ty}").into()),
        }
    }

    // ------------------------------------------------------------ inlining

    /// The self-contained schema of `def`: each named type is defined at its
    /// first use (depth first, as Avro requires) and referenced by full name
    /// afterwards.
    fn inlined(&self, def: &Def) -> Result<Value> {
        let mut defined = HashSet::new();
        self.inline_def(def, &mut defined)
    }

    fn inline_def(&self, def: &Def, defined: &mut HashSet<String>) -> Result<Value> {
        defined.insert(def.full_name.clone());
        let mut obj = def.json.clone();
        if let Some(Value::Array(fields)) = def.json.get("fields") {
            let mut out = Vec::with_capacity(fields.len());
            for field in fields {
                let Value::Object(field) = field else {
                    return Err(format!("avro/{}: a field must be an object", def.source).into());
                };
                let mut field = field.clone();
                let ty = field.get("type").cloned().unwrap_or(Value::Null);
                let is_union = ty.is_array();
                field.insert(
                    "type".into(),
                    self.inline_type(&ty, &def.namespace, defined, &def.source)?,
                );
                if is_union && field.get("default") != Some(&Value::Null) {
                    return Err(format!(
                        "avro/{}: optional field {:?} needs \"default\": null",
                        def.source,
                        field.get("name")
                    )
                    .into());
                }
                out.push(Value::Object(field));
            }
            obj.insert("fields".into(), Value::Array(out));
        }
        Ok(Value::Object(obj))
    }

    fn inline_type(
        &self,
        ty: &Value,
        namespace: &str,
        defined: &mut HashSet<String>,
        source: &str,
    ) -> Result<Value> {
        match ty {
            Value::String(s) if PRIMITIVES.contains(&s.as_str()) => Ok(ty.clone()),
            Value::String(s) => {
                let full = full_name_of(s, namespace);
                if defined.contains(&full) {
                    return Ok(Value::String(full));
                }
                let def = self
                    .defs
                    .get(&full)
                    .ok_or_else(|| format!("avro/{source}: unknown type {full}"))?;
                self.inline_def(def, defined)
            }
            Value::Array(variants) => variants
                .iter()
                .map(|v| self.inline_type(v, namespace, defined, source))
                .collect::<Result<Vec<_>>>()
                .map(Value::Array),
            Value::Object(obj) => {
                let mut obj = obj.clone();
                match obj.get("type").and_then(Value::as_str) {
                    Some("array") => {
                        let items = obj.get("items").cloned().unwrap_or(Value::Null);
                        obj.insert(
                            "items".into(),
                            self.inline_type(&items, namespace, defined, source)?,
                        );
                    }
                    Some("map") => {
                        let values = obj.get("values").cloned().unwrap_or(Value::Null);
                        obj.insert(
                            "values".into(),
                            self.inline_type(&values, namespace, defined, source)?,
                        );
                    }
                    Some("record" | "error" | "enum" | "fixed") => {
                        return Err(format!(
                            "avro/{source}: define named types in their own file, not inline"
                        )
                        .into())
                    }
                    _ => {}
                }
                Ok(Value::Object(obj))
            }
            other => Err(format!("avro/{source}: unsupported type {other}").into()),
        }
    }

    // ------------------------------------------------------------ Rust code

    fn type_code(&self, def: &Def) -> Result<String> {
        let mut code = String::new();
        let doc = def.json.get("doc").and_then(Value::as_str);
        code.push_str(&doc_lines("", doc));
        if doc.is_some() {
            code.push_str("///\n");
        }
        let _ = writeln!(
            code,
            "/// Avro `{}`, generated from `schemas/avro/{}`.",
            def.full_name, def.source
        );
        match def.json.get("type").and_then(Value::as_str) {
            Some("enum") => code.push_str(&self.enum_code(def)?),
            _ => code.push_str(&self.struct_code(def)?),
        }
        // A direct writer only for types whose apache-avro encoding it can
        // reproduce byte for byte; the others keep the apache-avro path.
        let fast = self.fast_def(&def.full_name, 0)?;
        if fast {
            code.push_str(&self.writer_code(def)?);
            code.push_str(&self.reader_code(def)?);
        }
        // Named/Record types are whole records, so `encode_named` can write
        // them directly; event/command structs are payloads (no envelope).
        let write_record = if fast && matches!(def.kind, Kind::Named | Kind::Record) {
            "\n\n    fn write_record(&self, out: &mut Vec<u8>) -> bool {\n        crate::codec::fast::AvroWrite::write_avro(self, out);\n        true\n    }\n\n    fn read_record(input: &mut &[u8]) -> Option<Result<Self, crate::codec::fast::ReadError>> {\n        Some(crate::codec::fast::AvroRead::read_avro(input))\n    }"
        } else {
            ""
        };
        let _ = writeln!(
            code,
            "impl {name} {{\n    /// The fully-qualified Avro name.\n    pub const FULL_NAME: &'static str = {full:?};\n}}\n\nimpl crate::NamedRecord for {name} {{\n    const FULL_NAME: &'static str = {full:?};{write_record}\n}}\n",
            name = def.name,
            full = def.full_name
        );
        let fast_arg = if fast { ", fast" } else { "" };
        match def.kind {
            Kind::Event => {
                let _ = writeln!(
                    code,
                    "crate::payload::impl_payload!(EventPayload, {}, {:?}{fast_arg});\n",
                    def.name, def.full_name
                );
            }
            Kind::Command => {
                let _ = writeln!(
                    code,
                    "crate::payload::impl_payload!(CommandPayload, {}, {:?}{fast_arg});\n",
                    def.name, def.full_name
                );
            }
            Kind::Named | Kind::Record => {}
        }
        Ok(code)
    }

    // ------------------------------------------------------------ fast writers

    /// Whether a direct writer can reproduce apache-avro's encoding of the
    /// named type: every supported type except maps (apache-avro writes a
    /// map's entries in `HashMap` order, which is not reproducible).
    fn fast_def(&self, full_name: &str, depth: usize) -> Result<bool> {
        let def = self
            .defs
            .get(full_name)
            .ok_or_else(|| format!("unknown type {full_name}"))?;
        if def.json.get("type").and_then(Value::as_str) != Some("record") {
            return Ok(true);
        }
        self.every_field(def, |ty| self.fast_type(ty, &def.namespace, depth + 1))
    }

    /// Whether `check` holds for the type of every field of the record `def`.
    fn every_field(&self, def: &Def, check: impl Fn(&Value) -> Result<bool>) -> Result<bool> {
        for field in self.fields(def)? {
            if !check(field.get("type").unwrap_or(&Value::Null))? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn fast_type(&self, ty: &Value, namespace: &str, depth: usize) -> Result<bool> {
        // Recursive types are refused by `has_float`; this only bounds the walk.
        if depth > 64 {
            return Err(format!("types nest deeper than 64 levels at {ty}").into());
        }
        match ty {
            Value::String(s) if PRIMITIVES.contains(&s.as_str()) => Ok(true),
            Value::String(s) => self.fast_def(&full_name_of(s, namespace), depth + 1),
            Value::Array(variants) => {
                for v in variants {
                    if !self.fast_type(v, namespace, depth + 1)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            Value::Object(obj) => match obj.get("type").and_then(Value::as_str) {
                Some("array") => {
                    let items = obj.get("items").unwrap_or(&Value::Null);
                    // The fast reader bounds an array's count by the bytes
                    // left, which holds only if every item takes a byte.
                    Ok(!self.may_be_empty(items, namespace, depth + 1)?
                        && self.fast_type(items, namespace, depth + 1)?)
                }
                Some("map") => Ok(false),
                // A primitive with a logical type (`rust_type` refuses the rest).
                _ => Ok(true),
            },
            _ => Ok(false),
        }
    }

    /// Whether a value of `ty` can be encoded in zero bytes (`null`, or a
    /// record all of whose fields can).
    fn may_be_empty(&self, ty: &Value, namespace: &str, depth: usize) -> Result<bool> {
        if depth > 64 {
            return Err(format!("types nest deeper than 64 levels at {ty}").into());
        }
        match ty {
            Value::String(s) if s == "null" => Ok(true),
            Value::String(s) if PRIMITIVES.contains(&s.as_str()) => Ok(false),
            Value::String(s) => {
                let full = full_name_of(s, namespace);
                let def = self
                    .defs
                    .get(&full)
                    .ok_or_else(|| format!("unknown type {full}"))?;
                if def.json.get("type").and_then(Value::as_str) != Some("record") {
                    return Ok(false);
                }
                self.every_field(def, |ty| self.may_be_empty(ty, &def.namespace, depth + 1))
            }
            // Unions and arrays write at least a branch index or a count.
            _ => Ok(false),
        }
    }

    /// `impl AvroRead` for a record or enum: the mirror of
    /// [`Self::writer_code`], reading the fields in schema order into the
    /// struct (a struct expression evaluates its fields in the order
    /// written).
    fn reader_code(&self, def: &Def) -> Result<String> {
        const F: &str = "crate::codec::fast";
        let mut code = String::new();
        if let Some(symbols) = enum_symbols(def)? {
            let _ = writeln!(
                code,
                "impl {F}::AvroRead for {} {{\n    fn read_avro(input: &mut &[u8]) -> Result<Self, {F}::ReadError> {{\n        Ok(match {F}::read_symbol(input, {})? {{",
                def.name,
                symbols.len()
            );
            for (index, symbol) in symbols.iter().enumerate() {
                let symbol = symbol.as_str().ok_or("enum symbols must be strings")?;
                let _ = writeln!(code, "            {index} => Self::{},", pascal(symbol));
            }
            let _ = writeln!(
                code,
                "            _ => return Err({F}::ReadError(\"an enum index the schema does not have\")),\n        }})\n    }}\n}}\n"
            );
            return Ok(code);
        }
        let mut body = String::new();
        for (name, field) in self.struct_fields(def)? {
            let ty = field.get("type").cloned().unwrap_or(Value::Null);
            let expr = self.read_expr(&ty, &def.source)?;
            let _ = writeln!(body, "            {}: {expr}?,", rust_ident(name));
        }
        let input = if body.is_empty() { "_input" } else { "input" };
        let _ = writeln!(
            code,
            "impl {F}::AvroRead for {} {{\n    fn read_avro({input}: &mut &[u8]) -> Result<Self, {F}::ReadError> {{\n        Ok(Self {{\n{body}        }})\n    }}\n}}\n",
            def.name
        );
        Ok(code)
    }

    /// An expression reading a value of `ty` from `input` (a `Result`).
    fn read_expr(&self, ty: &Value, source: &str) -> Result<String> {
        const F: &str = "crate::codec::fast";
        Ok(match ty {
            Value::Array(variants) if variants.len() == 2 && variants[0] == "null" => {
                let inner = self.read_fn(&variants[1], source)?;
                format!("{F}::read_optional(input, {inner})")
            }
            Value::Object(obj) if obj.get("type").and_then(Value::as_str) == Some("array") => {
                let inner = self.read_fn(obj.get("items").unwrap_or(&Value::Null), source)?;
                format!("{F}::read_array(input, {inner})")
            }
            _ => format!("{}(input)", self.read_fn(ty, source)?),
        })
    }

    /// A function (path or closure) from `&mut &[u8]` to a `Result` of a
    /// value of `ty`.
    fn read_fn(&self, ty: &Value, source: &str) -> Result<String> {
        const F: &str = "crate::codec::fast";
        Ok(match ty {
            Value::String(s) => match primitive_fns(s, source)? {
                Some((_, read, _)) => format!("{F}::{read}"),
                // A named type: its own reader (the Rust type is inferred
                // from the field).
                None => format!("{F}::AvroRead::read_avro"),
            },
            Value::Array(_) => format!("|input: &mut &[u8]| {}", self.read_expr(ty, source)?),
            Value::Object(obj) => match obj.get("type").and_then(Value::as_str) {
                Some("array") => format!("|input: &mut &[u8]| {}", self.read_expr(ty, source)?),
                Some(base) if PRIMITIVES.contains(&base) => {
                    self.read_fn(&Value::from(base), source)?
                }
                _ => return Err(format!("avro/{source}: no fast reader for {ty}").into()),
            },
            _ => return Err(format!("avro/{source}: no fast reader for {ty}").into()),
        })
    }

    /// `impl AvroWrite` for a record or enum: the fields in schema order
    /// (an event/command struct: every field but `envelope`). The event
    /// envelope also gets `write_avro_with_hash`, so the hash chain can write
    /// its canonical form (empty hash) without cloning the envelope.
    fn writer_code(&self, def: &Def) -> Result<String> {
        let mut code = String::new();
        if let Some(symbols) = enum_symbols(def)? {
            let _ = writeln!(
                code,
                "impl crate::codec::fast::AvroWrite for {} {{\n    fn write_avro(&self, out: &mut Vec<u8>) {{\n        // The symbol's index in the schema, as an Avro int.\n        crate::codec::fast::write_long(\n            out,\n            match self {{",
                def.name
            );
            for (index, symbol) in symbols.iter().enumerate() {
                let symbol = symbol.as_str().ok_or("enum symbols must be strings")?;
                let _ = writeln!(code, "                Self::{} => {index},", pascal(symbol));
            }
            code.push_str("            },\n        );\n    }\n}\n\n");
            return Ok(code);
        }
        let is_envelope = def.full_name == EVENT_ENVELOPE;
        let mut body = String::new();
        let mut saw_hash = false;
        for (name, field) in self.struct_fields(def)? {
            let ty = field.get("type").cloned().unwrap_or(Value::Null);
            if is_envelope && name == HASH_FIELD {
                if ty != "bytes" {
                    return Err(format!("avro/{}: `{HASH_FIELD}` must be bytes", def.source).into());
                }
                saw_hash = true;
                body.push_str("        let hash_at = out.len();\n        crate::codec::fast::write_bytes(out, hash);\n");
                continue;
            }
            let place = format!("self.{}", rust_ident(name));
            let stmt = self.write_stmt(&ty, &place, false, 0, &def.source)?;
            let _ = writeln!(body, "        {stmt}");
        }
        if is_envelope {
            if !saw_hash {
                return Err(format!(
                    "avro/{}: the event envelope needs `{HASH_FIELD}`",
                    def.source
                )
                .into());
            }
            let _ = writeln!(
                code,
                "impl {name} {{\n    /// Appends the Avro encoding of the envelope with `hash` in place of\n    /// `self.hash` (the hash chain's canonical form uses an empty one) and\n    /// returns the offset in `out` where the `hash` field starts.\n    pub fn write_avro_with_hash(&self, hash: &[u8], out: &mut Vec<u8>) -> usize {{\n{body}        hash_at\n    }}\n}}\n\nimpl crate::codec::fast::AvroWrite for {name} {{\n    fn write_avro(&self, out: &mut Vec<u8>) {{\n        self.write_avro_with_hash(&self.hash, out);\n    }}\n}}\n",
                name = def.name
            );
            return Ok(code);
        }
        if body.is_empty() {
            // A payload with no fields besides the envelope writes nothing.
            body.push_str("        let _ = out;\n");
        }
        let _ = writeln!(
            code,
            "impl crate::codec::fast::AvroWrite for {} {{\n    fn write_avro(&self, out: &mut Vec<u8>) {{\n{body}    }}\n}}\n",
            def.name
        );
        Ok(code)
    }

    /// A statement appending the Avro encoding of `expr` to `out`: a place
    /// (`self.x`) when `is_ref` is false, a `&T` binding otherwise.
    fn write_stmt(
        &self,
        ty: &Value,
        expr: &str,
        is_ref: bool,
        depth: usize,
        source: &str,
    ) -> Result<String> {
        const F: &str = "crate::codec::fast";
        // Copy values by value, everything else by reference.
        let value = if is_ref {
            format!("*{expr}")
        } else {
            expr.to_owned()
        };
        let reference = if is_ref {
            expr.to_owned()
        } else {
            format!("&{expr}")
        };
        Ok(match ty {
            Value::String(s) => match primitive_fns(s, source)? {
                Some((write, _, true)) => format!("{F}::{write}(out, {value});"),
                Some((write, _, false)) => format!("{F}::{write}(out, {reference});"),
                None => format!("{F}::AvroWrite::write_avro({reference}, out);"),
            },
            // `["null", T]` (the only union `rust_type` accepts): the branch
            // index, then the value.
            Value::Array(variants) if variants.len() == 2 && variants[0] == "null" => {
                let binding = format!("v{depth}");
                let inner = self.write_stmt(&variants[1], &binding, true, depth + 1, source)?;
                format!(
                    "match {reference} {{ None => out.push({F}::NULL_BRANCH), Some({binding}) => {{ out.push({F}::VALUE_BRANCH); {inner} }} }}"
                )
            }
            Value::Object(obj) => match obj.get("type").and_then(Value::as_str) {
                Some("array") => {
                    let binding = format!("item{depth}");
                    let items = obj.get("items").unwrap_or(&Value::Null);
                    let inner = self.write_stmt(items, &binding, true, depth + 1, source)?;
                    format!("{F}::write_array(out, {reference}, |out, {binding}| {{ {inner} }});")
                }
                // Logical types are written as their base type.
                Some(base) if PRIMITIVES.contains(&base) => {
                    self.write_stmt(&Value::from(base), expr, is_ref, depth, source)?
                }
                _ => return Err(format!("avro/{source}: no fast writer for {ty}").into()),
            },
            _ => return Err(format!("avro/{source}: no fast writer for {ty}").into()),
        })
    }

    fn enum_code(&self, def: &Def) -> Result<String> {
        let symbols: Vec<&str> = def
            .json
            .get("symbols")
            .and_then(Value::as_array)
            .ok_or_else(|| format!("avro/{}: an enum needs \"symbols\"", def.source))?
            .iter()
            .map(|s| s.as_str().ok_or("enum symbols must be strings"))
            .collect::<Result<_, _>>()?;
        let mut code = String::new();
        code.push_str(
            "#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]\n",
        );
        let _ = writeln!(code, "pub enum {} {{", def.name);
        for symbol in &symbols {
            let _ = writeln!(code, "    #[serde(rename = {symbol:?})]");
            let _ = writeln!(code, "    {},", pascal(symbol));
        }
        code.push_str("}\n\n");
        let _ = writeln!(code, "impl {} {{", def.name);
        code.push_str("    /// Every symbol, in schema order.\n");
        let _ = writeln!(
            code,
            "    pub const ALL: [Self; {}] = [{}];\n",
            symbols.len(),
            symbols
                .iter()
                .map(|s| format!("Self::{}", pascal(s)))
                .collect::<Vec<_>>()
                .join(", ")
        );
        code.push_str("    /// The Avro symbol.\n");
        code.push_str("    pub fn as_str(&self) -> &'static str {\n        match self {\n");
        for symbol in &symbols {
            let _ = writeln!(code, "            Self::{} => {symbol:?},", pascal(symbol));
        }
        code.push_str("        }\n    }\n}\n\n");
        let _ = writeln!(
            code,
            "impl std::fmt::Display for {} {{\n    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {{\n        f.write_str(self.as_str())\n    }}\n}}\n",
            def.name
        );
        let _ = writeln!(
            code,
            "impl std::str::FromStr for {name} {{\n    type Err = crate::UnknownSymbol;\n    fn from_str(s: &str) -> Result<Self, Self::Err> {{\n        Self::ALL\n            .into_iter()\n            .find(|v| v.as_str() == s)\n            .ok_or_else(|| crate::UnknownSymbol {{ type_name: {full:?}, symbol: s.to_owned() }})\n    }}\n}}\n",
            name = def.name,
            full = def.full_name
        );
        Ok(code)
    }

    fn struct_code(&self, def: &Def) -> Result<String> {
        let mut code = String::new();
        let eq = if self.has_float(&def.full_name, &mut Vec::new())? {
            ""
        } else {
            ", Eq"
        };
        let _ = writeln!(
            code,
            "#[derive(Debug, Clone, PartialEq{eq}, serde::Serialize, serde::Deserialize)]"
        );
        let _ = writeln!(code, "pub struct {} {{", def.name);
        for (name, field) in self.struct_fields(def)? {
            let ty = field.get("type").cloned().unwrap_or(Value::Null);
            let rt = self.rust_type(&ty, &def.namespace, &mut Vec::new(), &def.source)?;
            code.push_str(&doc_lines("    ", field.get("doc").and_then(Value::as_str)));
            if rt.optional {
                code.push_str("    #[serde(default)]\n");
            }
            if let Some(with) = rt.with {
                let _ = writeln!(code, "    #[serde(with = {with:?})]");
            }
            let _ = writeln!(code, "    pub {}: {},", rust_ident(name), rt.ty);
        }
        code.push_str("}\n\n");
        Ok(code)
    }

    fn of_context(&self, ctx: &str, kind: Kind) -> Vec<&Def> {
        self.defs
            .values()
            .filter(|d| d.kind == kind && d.context.as_deref() == Some(ctx))
            .collect()
    }

    fn context_enum(&self, ctx: &str, kind: Kind) -> Result<String> {
        let defs = self.of_context(ctx, kind);
        let (suffix, trait_name, what) = match kind {
            Kind::Event => ("Event", "EventPayload", "events"),
            _ => ("Command", "CommandPayload", "commands"),
        };
        let name = format!("{}{suffix}", pascal(ctx));
        let mut eq = ", Eq";
        for d in &defs {
            if self.has_float(&d.full_name, &mut Vec::new())? {
                eq = "";
            }
        }
        let mut code = String::new();
        let _ = writeln!(
            code,
            "/// Every {what} record of the `{ctx}` context (topic `<prefix>{ctx}.{what}`).\n///\n/// Serde (JSON) form: internally tagged, `{{\"type\": \"<RecordName>\", ...fields}}`."
        );
        let _ = writeln!(
            code,
            "#[derive(Debug, Clone, PartialEq{eq}, serde::Serialize, serde::Deserialize)]\n#[serde(tag = \"type\")]"
        );
        let _ = writeln!(code, "pub enum {name} {{");
        for d in &defs {
            let doc = d.json.get("doc").and_then(Value::as_str);
            code.push_str(&doc_lines("    ", doc));
            let _ = writeln!(code, "    {}({}),", d.name, d.name);
        }
        code.push_str("}\n\n");
        let _ = writeln!(
            code,
            "crate::payload::payload_enum!({trait_name}, {name}, crate::topics::Context::{} {{",
            pascal(ctx)
        );
        for d in &defs {
            let aggregate = d
                .json
                .get("aggregate")
                .and_then(Value::as_str)
                .unwrap_or("");
            let _ = writeln!(
                code,
                "    {} => ({:?}, {:?}),",
                d.name, d.full_name, aggregate
            );
        }
        code.push_str("});\n\n");
        Ok(code)
    }

    fn any_enums(&self) -> String {
        let mut code = header();
        for (kind, suffix, trait_name, what) in [
            (Kind::Event, "Event", "EventPayload", "event"),
            (Kind::Command, "Command", "CommandPayload", "command"),
        ] {
            let _ = writeln!(
                code,
                "/// Any {what} of the contract, by context: decode with this when one consumer reads\n/// several contexts' topics (audit, replay, the command processor)."
            );
            let _ = writeln!(code, "#[derive(Debug, Clone, PartialEq)]");
            let _ = writeln!(code, "pub enum Any{suffix} {{");
            for ctx in CONTEXTS {
                if self.of_context(ctx, kind).is_empty() {
                    continue;
                }
                let _ = writeln!(
                    code,
                    "    /// From the `{ctx}` context.\n    {}(crate::{ctx}::{}{suffix}),",
                    pascal(ctx),
                    pascal(ctx)
                );
            }
            code.push_str("}\n\n");
            let _ = writeln!(
                code,
                "crate::payload::any_enum!({trait_name}, Any{suffix} {{"
            );
            for ctx in CONTEXTS {
                if self.of_context(ctx, kind).is_empty() {
                    continue;
                }
                let _ = writeln!(
                    code,
                    "    {}(crate::{ctx}::{}{suffix}),",
                    pascal(ctx),
                    pascal(ctx)
                );
            }
            code.push_str("});\n\n");
        }
        code
    }

    fn defs_table(&self) -> Result<String> {
        let mut code = header();
        code.push_str("/// Every schema of the contract, sorted by full name.\npub(crate) static DEFS: &[crate::contract::SchemaDef] = &[\n");
        for def in self.defs.values() {
            let inlined = serde_json::to_string(&self.inlined(def)?)?;
            let kind = match def.kind {
                Kind::Named => "Named",
                Kind::Record => "Record",
                Kind::Event => "Event",
                Kind::Command => "Command",
            };
            let context = match &def.context {
                Some(ctx) => format!("Some(crate::topics::Context::{})", pascal(ctx)),
                None => "None".into(),
            };
            let aggregate = match def.json.get("aggregate").and_then(Value::as_str) {
                Some(a) => format!("Some({a:?})"),
                None => "None".into(),
            };
            let _ = writeln!(
                code,
                "    crate::contract::SchemaDef {{\n        full_name: {:?},\n        name: {:?},\n        kind: crate::contract::DefKind::{kind},\n        context: {context},\n        aggregate_type: {aggregate},\n        source: {:?},\n        schema_json: {},\n    }},",
                def.full_name,
                def.name,
                def.source,
                raw_str(&inlined)
            );
        }
        code.push_str("];\n");
        Ok(code)
    }
}
