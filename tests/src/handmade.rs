//! Components written by hand in the component text format, for attacks a Rust guest
//! cannot make: Rust builds one linear memory and one small table, so "many memories" and
//! "a table grown by millions of entries" need components put together by hand.
//!
//! [`grower`] implements the contract with a bump allocator and nothing else; its
//! `process` grows extra memories and a table, then fails the batch with `grew`.

/// The contract's types, as `wit-component` writes them (`waystream:transform/types`).
const TYPES: &str = r#"
  (type $types-ty
    (instance
      (type (;0;) (record (field "user" string) (field "id" string)))
      (export (;1;) "trajectory" (type (eq 0)))
      (type (;2;) (list u8))
      (type (;3;) (list u32))
      (type (;4;) (record (field "data" 2) (field "ends" 3) (field "trajectory" 3) (field "seq" 3)))
      (export (;5;) "raw-lines" (type (eq 4)))
      (type (;6;) u32)
      (export (;7;) "zone-set-index" (type (eq 6)))
      (type (;8;) u32)
      (export (;9;) "point-flags" (type (eq 8)))
      (type (;10;) (list s64))
      (type (;11;) (list f64))
      (type (;12;) (list 7))
      (type (;13;) (list 9))
      (type (;14;) (record (field "trajectory" 3) (field "seq" 3) (field "ts-ms" 10) (field "lat" 11) (field "lon" 11) (field "alt-m" 11) (field "zones" 12) (field "dist-m" 11) (field "speed-mps" 11) (field "heading-deg" 11) (field "flags" 13)))
      (export (;15;) "point-columns" (type (eq 14)))
      (type (;16;) (variant (case "lines" 5) (case "points" 15)))
      (export (;17;) "records" (type (eq 16)))
      (type (;18;) (list 1))
      (type (;19;) (list string))
      (type (;20;) (list 19))
      (type (;21;) (record (field "trajectories" 18) (field "zone-sets" 20) (field "records" 17)))
      (export (;22;) "batch" (type (eq 21)))
      (type (;23;) (record (field "index" u32) (field "reason" string)))
      (export (;24;) "rejection" (type (eq 23)))
      (type (;25;) (option 20))
      (type (;26;) (list 24))
      (type (;27;) (record (field "points" 15) (field "zone-sets" 25) (field "rejected" 26)))
      (export (;28;) "output" (type (eq 27)))
    )
  )
"#;

/// A component whose `process` grows each of `memories` extra memories by
/// `pages_each` 64 KiB pages and a table by `table_elements`, then fails the batch.
pub fn grower(memories: usize, pages_each: u32, table_elements: u32) -> Vec<u8> {
    let declare: String = (1..=memories)
        .map(|i| format!("(memory $m{i} 0)\n"))
        .collect();
    let grow: String = (1..=memories)
        .map(|i| format!("(drop (memory.grow $m{i} (i32.const {pages_each})))\n"))
        .collect();
    let text = format!(
        r#"(component
  {TYPES}
  (import "waystream:transform/types@0.3.0" (instance $types (type $types-ty)))
  (alias export $types "batch" (type $batch))
  (alias export $types "output" (type $output))
  (core module $m
    (memory (export "memory") 1)
    {declare}
    (table $t 0 funcref)
    (global $bump (mut i32) (i32.const 4096))
    ;; Bump allocation in memory 0, for the host's copies of arguments.
    (func (export "cabi_realloc") (param i32 i32) (param $align i32) (param $size i32) (result i32)
      (local $p i32)
      (local.set $p
        (i32.and
          (i32.add (global.get $bump) (i32.sub (local.get $align) (i32.const 1)))
          (i32.sub (i32.const 0) (local.get $align))))
      (global.set $bump (i32.add (local.get $p) (local.get $size)))
      (if (i32.gt_u (global.get $bump) (i32.mul (memory.size) (i32.const 65536)))
        (then
          (drop (memory.grow
            (i32.add (i32.const 1)
              (i32.div_u (global.get $bump) (i32.const 65536)))))))
      (local.get $p))
    (func (export "init") (param i32 i32) (result i32)
      (i32.store8 (i32.const 16) (i32.const 0))
      (i32.const 16))
    (func (export "process") (param i32) (result i32)
      {grow}
      (drop (table.grow $t (ref.null func) (i32.const {table_elements})))
      ;; err("grew")
      (i32.store8 (i32.const 16) (i32.const 1))
      (i32.store (i32.const 20) (i32.const 64))
      (i32.store (i32.const 24) (i32.const 4))
      (i32.const 16))
    (func (export "snapshot") (result i32)
      (i32.store (i32.const 32) (i32.const 0))
      (i32.store (i32.const 36) (i32.const 0))
      (i32.const 32))
    (func (export "restore") (param i32 i32) (result i32)
      (i32.store8 (i32.const 16) (i32.const 0))
      (i32.const 16))
    (data (i32.const 64) "grew")
  )
  (core instance $i (instantiate $m))
  (alias core export $i "memory" (core memory $mem))
  (alias core export $i "cabi_realloc" (core func $realloc))
  (type $init-ty (func (param "config" string) (result (result (error string)))))
  (func $init (type $init-ty)
    (canon lift (core func $i "init") (memory $mem) (realloc $realloc)))
  (type $process-ty (func (param "batch" $batch) (result (result $output (error string)))))
  (func $process (type $process-ty)
    (canon lift (core func $i "process") (memory $mem) (realloc $realloc)))
  (type $snapshot-ty (func (result (list u8))))
  (func $snapshot (type $snapshot-ty)
    (canon lift (core func $i "snapshot") (memory $mem) (realloc $realloc)))
  (type $restore-ty (func (param "state" (list u8)) (result (result (error string)))))
  (func $restore (type $restore-ty)
    (canon lift (core func $i "restore") (memory $mem) (realloc $realloc)))
  (instance $exports
    (export "init" (func $init))
    (export "process" (func $process))
    (export "snapshot" (func $snapshot))
    (export "restore" (func $restore)))
  (export "waystream:transform/transform@0.3.0" (instance $exports))
)"#
    );
    wat::parse_str(&text).unwrap_or_else(|e| panic!("the hand-made component: {e}\n{text}"))
}
