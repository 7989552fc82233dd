//! `crdgen`: writes the `stunner.l7mp.io/v1` CRD YAML generated from the Rust types into the
//! chart's CRD folder (or prints it with `--stdout`).

use std::path::PathBuf;

use clap::Parser;

/// Command-line flags of crdgen.
#[derive(Parser, Debug)]
#[command(about = "Generate the STUNner CRD manifests from the operator's Rust types")]
struct Args {
    /// Output folder of the CRD YAML files.
    #[arg(
        long,
        env = "CRDGEN_OUT",
        default_value = "charts/stunner-gateway-operator/crds"
    )]
    out: PathBuf,
    /// Print all CRDs to stdout instead of writing files.
    #[arg(long, env = "CRDGEN_STDOUT")]
    stdout: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if !args.stdout {
        std::fs::create_dir_all(&args.out)?;
    }
    for (file, crd) in operator::crd::crds() {
        let yaml = operator::crd::crd_yaml(&crd)?;
        if args.stdout {
            print!("{yaml}");
        } else {
            let path = args.out.join(file);
            std::fs::write(&path, yaml)?;
            eprintln!("wrote {}", path.display());
        }
    }
    Ok(())
}
