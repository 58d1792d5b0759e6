//! `zcopy generate man|completions|links DIR`: the man pages and shell completions,
//! generated from the command-line definitions themselves (as ripgrep's
//! `--generate` does), so they never drift from the flags; and the links that make
//! zcopy the tools it stands in for (`cp`, `xxhsum`, `b3sum`, `sha256sum`, ...:
//! see [`crate::PEER_NAMES`]). The package build (`scripts/package.sh`) runs it;
//! nothing generated is committed.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::CommandFactory;
use clap_complete::Shell;

use crate::flags;

/// Write the man pages, the shell completions or the peer-name links into a directory
///
/// The files written are listed on stdout unless -q is given.
#[derive(clap::Args)]
pub struct Args {
    /// What to write
    #[arg(value_enum)]
    what: What,
    /// Directory to write into (created if missing)
    dir: PathBuf,
    /// links: what the links point to [default: this zcopy binary]
    #[arg(long, value_name = "PATH")]
    target: Option<PathBuf>,
    #[command(flatten)]
    say: flags::Verbosity,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum What {
    /// zcopy.1 and one page per subcommand (zcopy-send.1, ...)
    Man,
    /// zcopy.bash, _zcopy (zsh) and zcopy.fish
    Completions,
    /// cp, xxhsum, b3sum, sha256sum, ...: symbolic links to zcopy, each of which
    /// runs zcopy as that tool
    Links,
}

pub fn run(args: Args) -> Result<()> {
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("cannot create {}", args.dir.display()))?;
    let mut command = crate::Cli::command();
    command.build();
    match args.what {
        What::Man => man_pages(&command, &args.dir, args.say.quiet),
        What::Completions => {
            for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
                let path = clap_complete::generate_to(shell, &mut command, "zcopy", &args.dir)
                    .with_context(|| format!("cannot write {shell} completions"))?;
                if !args.say.quiet {
                    println!("{}", path.display());
                }
            }
            Ok(())
        }
        What::Links => links(&args),
    }
}

/// One symbolic link per peer name; an old link of that name is replaced, any
/// other file is left alone and named in the error.
fn links(args: &Args) -> Result<()> {
    let target = match &args.target {
        Some(target) => target.clone(),
        None => std::env::current_exe().context("cannot find the zcopy binary")?,
    };
    for name in crate::PEER_NAMES {
        let link = args.dir.join(name);
        match std::fs::symlink_metadata(&link) {
            Ok(meta) if meta.file_type().is_symlink() => std::fs::remove_file(&link)
                .with_context(|| format!("cannot replace {}", link.display()))?,
            Ok(_) => anyhow::bail!("{}: exists and is not a link", link.display()),
            Err(_) => {}
        }
        std::os::unix::fs::symlink(&target, &link)
            .with_context(|| format!("cannot write {}", link.display()))?;
        if !args.say.quiet {
            println!("{}", link.display());
        }
    }
    Ok(())
}

/// `zcopy.1`, then `zcopy-SUB.1` for every visible subcommand, each with the exit
/// codes section.
fn man_pages(command: &clap::Command, dir: &Path, quiet: bool) -> Result<()> {
    let pages = std::iter::once((command.clone(), "zcopy".to_string())).chain(
        command
            .get_subcommands()
            .filter(|sub| !sub.is_hide_set() && sub.get_name() != "help")
            .map(|sub| {
                let name = format!("zcopy-{}", sub.get_name());
                (sub.clone().name(name.clone()), name)
            }),
    );
    for (page, name) in pages {
        let path = dir.join(format!("{name}.1"));
        let mut out = Vec::new();
        let man = clap_mangen::Man::new(page);
        man.render(&mut out)?;
        out.extend_from_slice(crate::exit::man_section().as_bytes());
        std::fs::write(&path, out).with_context(|| format!("cannot write {}", path.display()))?;
        if !quiet {
            println!("{}", path.display());
        }
    }
    Ok(())
}
