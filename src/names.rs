//! Enums whose values are fixed names (in scenario files, on the command line, in reports):
//! the one place that writes their `as_str`, `ALL`, `NAMES`, `Display` and `FromStr`.
//!
//! [`string_enum!`](crate::string_enum) declares the enum and its names together, so a variant
//! and its name cannot drift apart and every enum rejects an unknown name with the same
//! message: ``unknown <noun> `<input>`: expected one of <names, comma-separated>``.

/// Declare an enum of named values.
///
/// Write the enum as usual (doc comments, derives and other attributes, `#[default]` on a
/// variant all pass through), add the noun used in the parse error after its name, and give
/// every variant its name with `= "name"`. Extra spellings that parse to the same variant
/// (but are not listed in `NAMES` or the error) follow with `|`.
///
/// Generated, for `enum E` with N variants:
///
/// - `E::ALL: [E; N]` and `E::NAMES: [&str; N]`, in declaration order;
/// - `E::as_str(&self) -> &'static str`;
/// - `Display` (the name) and `FromStr<Err = String>` (the name, or an alias).
///
/// ```
/// tapeloop::string_enum! {
///     /// What to do when the context overflows.
///     #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
///     pub enum Mode: "compaction mode" {
///         /// End the run.
///         #[default]
///         Stop = "stop",
///         Compact = "compact" | "summarize",
///     }
/// }
///
/// assert_eq!(Mode::NAMES, ["stop", "compact"]);
/// assert_eq!(Mode::Compact.to_string(), "compact");
/// assert_eq!("summarize".parse::<Mode>(), Ok(Mode::Compact));
/// assert_eq!(
///     "halt".parse::<Mode>().unwrap_err(),
///     "unknown compaction mode `halt`: expected one of stop, compact"
/// );
/// ```
#[macro_export]
macro_rules! string_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident : $noun:literal {
            $(
                $(#[$vmeta:meta])*
                $variant:ident = $str:literal $(| $alias:literal)*
            ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        $vis enum $name {
            $(
                $(#[$vmeta])*
                $variant,
            )+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: [$name; [$($str),+].len()] = [$($name::$variant),+];
            /// Every name, in declaration order (aliases excepted).
            pub const NAMES: [&'static str; [$($str),+].len()] = [$($str),+];

            /// The value's name.
            pub fn as_str(&self) -> &'static str {
                match self {
                    $($name::$variant => $str,)+
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($str $(| $alias)* => Ok($name::$variant),)+
                    _ => Err(format!(
                        concat!("unknown ", $noun, " `{}`: expected one of {}"),
                        s,
                        $name::NAMES.join(", ")
                    )),
                }
            }
        }
    };
}
