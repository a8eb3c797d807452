//! The `kubeboot` command line: init | serve | up | version | certs | kube-apiserver |
//! publish-kubeconfig.

use anyhow::Context;
use clap::{Parser, Subcommand};
use kubeboot::options::{Mode, ServerRunOptions, ValidOptions, upstream_flags};
use kubeboot::{app, pki, version};
use std::path::Path;

#[derive(Parser)]
#[command(name = "kubeboot", version = version::GIT_VERSION, long_version = version::LONG_VERSION, about = "A Kubernetes API server and control-plane bootstrapper")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate the PKI and admin kubeconfig (kubeadm's layout); keeps valid files.
    Init {
        #[command(flatten)]
        options: ServerRunOptions,
        /// Regenerate every file, valid or not.
        #[arg(long)]
        force: bool,
    },
    /// Run the API server from an existing PKI.
    Serve {
        #[command(flatten)]
        options: ServerRunOptions,
    },
    /// `init`, then `serve`, bound to 127.0.0.1 unless --bind-address says otherwise.
    Up {
        #[command(flatten)]
        options: ServerRunOptions,
    },
    /// Print kubeboot's version, the Kubernetes API version it serves, and the git commit.
    Version,
    /// Certificate utilities.
    Certs {
        #[command(subcommand)]
        command: CertsCommand,
    },
    /// Run as kube-apiserver: accepts every flag kubeadm passes (unimplemented ones with a warning).
    #[command(name = "kube-apiserver")]
    KubeApiserver {
        #[command(flatten)]
        options: ServerRunOptions,
    },
    /// Apply the admin kubeconfig, pointed at --server, as a Secret of the cluster this runs in
    /// (in-cluster credentials or $KUBECONFIG; the pod's namespace).
    PublishKubeconfig {
        /// The kubeconfig to publish.
        #[arg(long, default_value = ".kubeboot/admin.kubeconfig")]
        kubeconfig: std::path::PathBuf,
        /// The Secret to apply; the kubeconfig is its `admin.kubeconfig` key.
        #[arg(long)]
        secret: String,
        /// The URL clients reach the server by (the Service's), written into the kubeconfig.
        #[arg(long)]
        server: String,
    },
}

#[derive(Subcommand)]
enum CertsCommand {
    /// Print each certificate's expiry and residual time.
    CheckExpiration {
        #[command(flatten)]
        options: ServerRunOptions,
    },
}

/// argv with the subcommand implied by the binary's name and the unimplemented upstream flags removed.
fn normalized_args() -> (Vec<String>, Vec<String>) {
    let mut args: Vec<String> = std::env::args().collect();
    let invoked_as = args
        .first()
        .and_then(|a| Path::new(a).file_name())
        .map(|n| n.to_string_lossy().into_owned());
    if invoked_as.as_deref() == Some("kube-apiserver") {
        args.insert(1, "kube-apiserver".into());
    }
    upstream_flags::strip_unimplemented(args)
}

/// The flags through `complete()` and `validate()`: every command that reads them starts here.
fn complete_and_validate(options: ServerRunOptions, mode: Mode) -> anyhow::Result<ValidOptions> {
    let valid = options.complete(mode).validate().context("invalid flags")?;
    for warning in valid.warnings() {
        tracing::warn!("{warning}");
    }
    Ok(valid)
}

fn ensure_pki(o: &ValidOptions, force: bool) -> anyhow::Result<()> {
    let report = pki::ensure(o, force).context("generating the PKI")?;
    print!("{report}");
    Ok(())
}

async fn serve(o: ValidOptions) -> anyhow::Result<()> {
    let started = app::prepare(&o, true).await?;
    tracing::info!(
        address = %started.local_addr().map(|a| a.to_string()).unwrap_or_default(),
        checks = %started.server.readyz_checks().join(","),
        "serving securely"
    );
    started.run().await?;
    Ok(())
}

fn main() -> std::process::ExitCode {
    let (args, warnings) = normalized_args();
    let cli = Cli::parse_from(args);
    let (verbosity, format) = match &cli.command {
        Command::Init { options, .. }
        | Command::Serve { options }
        | Command::Up { options }
        | Command::KubeApiserver { options }
        | Command::Certs {
            command: CertsCommand::CheckExpiration { options },
        } => (options.verbosity, options.logging_format),
        Command::Version | Command::PublishKubeconfig { .. } => {
            (0, kubeboot::logging::LogFormat::Text)
        }
    };
    kubeboot::logging::init(verbosity, format);
    for warning in warnings {
        tracing::warn!("{warning}");
    }
    if rustls::crypto::ring::default_provider()
        .install_default()
        .is_err()
    {
        tracing::debug!("a rustls crypto provider was already installed");
    }
    match run(cli.command) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> anyhow::Result<()> {
    let runtime = || {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("starting the runtime")
    };
    match command {
        Command::Version => {
            println!("{}", version::LONG_VERSION);
            Ok(())
        }
        Command::PublishKubeconfig {
            kubeconfig,
            secret,
            server,
        } => {
            let published = pki::publish::pointed_at(&kubeconfig, &server)?;
            runtime()?.block_on(pki::publish::publish(&secret, published))?;
            println!("published {} to the Secret {secret}", kubeconfig.display());
            Ok(())
        }
        Command::Init { options, force } => {
            ensure_pki(&complete_and_validate(options, Mode::Init)?, force)
        }
        Command::Serve { options } | Command::KubeApiserver { options } => {
            let o = complete_and_validate(options, Mode::Serve)?;
            runtime()?.block_on(serve(o))
        }
        Command::Up { options } => {
            let o = complete_and_validate(options, Mode::Up)?;
            ensure_pki(&o, false)?;
            let kubeconfig = std::path::absolute(&o.pki.admin_kubeconfig)
                .unwrap_or(o.pki.admin_kubeconfig.clone());
            println!("export KUBECONFIG={}", kubeconfig.display());
            runtime()?.block_on(serve(o))
        }
        Command::Certs {
            command: CertsCommand::CheckExpiration { options },
        } => {
            // Validated as every command is; the warnings, about what serving lacks, are not repeated here.
            let o = options
                .complete(Mode::Init)
                .validate()
                .context("invalid flags")?;
            let now = time::OffsetDateTime::now_utc();
            println!("{:<28} {:<26} RESIDUAL TIME", "CERTIFICATE", "EXPIRES");
            for e in pki::expirations(&o)? {
                let left = e.not_after - now;
                let residual = if left.is_negative() {
                    "<invalid>".to_string()
                } else {
                    format!("{}d", left.whole_days())
                };
                let expires = e
                    .not_after
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default();
                println!("{:<28} {:<26} {residual}", e.name, expires);
            }
            Ok(())
        }
    }
}
