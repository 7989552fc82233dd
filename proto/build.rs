//! Build script of `proto`: with the `keda` feature, generates the KEDA external scaler gRPC code
//! (server and client) from `proto/keda/externalscaler.proto` with the vendored `protoc`, so the
//! build needs no system protobuf compiler. Without the feature it does nothing: no protoc runs.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=build.rs");
    #[cfg(feature = "keda")]
    keda::generate()?;
    Ok(())
}

#[cfg(feature = "keda")]
mod keda {
    use std::error::Error;

    const KEDA_PROTO: &str = "proto/keda/externalscaler.proto";

    /// Compiles the KEDA proto into `OUT_DIR` (read by `proto::keda` through `include_proto!`).
    pub(crate) fn generate() -> Result<(), Box<dyn Error>> {
        point_prost_at_vendored_protoc()?;
        println!("cargo:rerun-if-changed={KEDA_PROTO}");
        tonic_prost_build::configure()
            .build_server(true)
            .build_client(true)
            .compile_protos(&[KEDA_PROTO], &["proto/keda"])?;
        Ok(())
    }

    /// prost-build finds `protoc` through the `PROTOC` environment variable.
    #[allow(unsafe_code)]
    fn point_prost_at_vendored_protoc() -> Result<(), Box<dyn Error>> {
        let protoc = protoc_bin_vendored::protoc_bin_path()?;
        // SAFETY: the build script is single-threaded here; nothing else reads or writes the
        // environment concurrently.
        unsafe { std::env::set_var("PROTOC", protoc) };
        Ok(())
    }
}
