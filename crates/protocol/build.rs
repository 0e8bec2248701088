//! Generates the protobuf types of `proto/montage.proto` with prost. protox parses the file in
//! pure Rust, so building needs no `protoc`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/montage.proto");
    let files = protox::compile(["proto/montage.proto"], ["proto"])?;
    prost_build::Config::new().compile_fds(files)?;
    Ok(())
}
