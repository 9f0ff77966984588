fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mut config = wasmtime::Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(args[3] == "1");
    let engine = wasmtime::Engine::new(&config).unwrap();
    let bytes = std::fs::read(&args[1]).unwrap();
    let out = engine.precompile_component(&bytes).unwrap();
    std::fs::write(&args[2], out).unwrap();
}
