//! The closed vocabularies of the public API (API.md "Enums"), each with its API spelling.
//!
//! Invariant: `parse(x.as_str()) == Ok(x)` for every value, and `ALL` lists every value once.

use super::values::ValueError;

macro_rules! vocabulary {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// Every API spelling, in declaration order.
            pub const NAMES: &'static [&'static str] = &[$($text),+];

            /// The API spelling (`snake_case`).
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            /// Parses the API spelling.
            pub fn parse(text: &str) -> Result<Self, ValueError> {
                match text {
                    $($text => Ok($name::$variant),)+
                    "" => Err(ValueError::Missing),
                    _ => Err(ValueError::OneOf(Self::NAMES)),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

vocabulary! {
    /// Kind of a party organization (组织类别).
    OrgKind {
        /// 党委 / 工委.
        Committee => "committee",
        /// 党总支.
        GeneralBranch => "general_branch",
        /// 党支部.
        Branch => "branch",
        /// 党小组.
        Group => "group",
    }
}

vocabulary! {
    /// Type of the unit an organization is set up in (单位类型).
    UnitType {
        GovernmentOrgan => "government_organ",
        PublicInstitution => "public_institution",
        StateEnterprise => "state_enterprise",
        PrivateEnterprise => "private_enterprise",
        SocialOrganization => "social_organization",
        Rural => "rural",
        Community => "community",
        University => "university",
        Other => "other",
    }
}

vocabulary! {
    /// 正式党员 / 预备党员.
    Category {
        Full => "full",
        Probationary => "probationary",
    }
}

vocabulary! {
    /// A member's standing. Only `active` members count and are graded.
    Status {
        Active => "active",
        TransferredOut => "transferred_out",
        Deceased => "deceased",
        Expelled => "expelled",
        Left => "left",
    }
}

vocabulary! {
    /// Circumstances that change how a member is evaluated.
    Flag {
        /// 离退休.
        Retired => "retired",
        /// 年老体弱.
        ElderlyInfirm => "elderly_infirm",
        /// 流动党员.
        Mobile => "mobile",
        /// 出国(境).
        Abroad => "abroad",
        /// 免于定级 (after a 党员大会 decision).
        Exempt => "exempt",
    }
}

vocabulary! {
    /// 党纪处分, from the lightest to the heaviest.
    SanctionKind {
        Warning => "warning",
        SeriousWarning => "serious_warning",
        RemovalFromPost => "removal_from_post",
        Probation => "probation",
        Expulsion => "expulsion",
    }
}

vocabulary! {
    /// Gender; optional in the API (`unspecified` when not given).
    Gender {
        Unspecified => "unspecified",
        Male => "male",
        Female => "female",
    }
}

vocabulary! {
    /// A role that can be granted over an organization subtree (the `member` role is implicit).
    GrantRole {
        Admin => "admin",
        Secretary => "secretary",
    }
}

impl SanctionKind {
    /// The sanction ends party membership: the member's status becomes `expelled`.
    pub fn expels(self) -> bool {
        self == SanctionKind::Expulsion
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn round_trips<T: Copy + PartialEq + std::fmt::Debug>(
        all: &[T],
        as_str: fn(T) -> &'static str,
        parse: fn(&str) -> Result<T, ValueError>,
    ) {
        for v in all {
            assert_eq!(parse(as_str(*v)).unwrap(), *v);
        }
    }

    #[test]
    fn every_value_round_trips() {
        round_trips(OrgKind::ALL, OrgKind::as_str, OrgKind::parse);
        round_trips(UnitType::ALL, UnitType::as_str, UnitType::parse);
        round_trips(Category::ALL, Category::as_str, Category::parse);
        round_trips(Status::ALL, Status::as_str, Status::parse);
        round_trips(Flag::ALL, Flag::as_str, Flag::parse);
        round_trips(SanctionKind::ALL, SanctionKind::as_str, SanctionKind::parse);
        round_trips(Gender::ALL, Gender::as_str, Gender::parse);
        round_trips(GrantRole::ALL, GrantRole::as_str, GrantRole::parse);
    }

    #[test]
    fn unknown_and_empty_values_are_refused() {
        assert_eq!(OrgKind::parse(""), Err(ValueError::Missing));
        assert!(matches!(
            OrgKind::parse("Branch"),
            Err(ValueError::OneOf(_))
        ));
        assert!(matches!(
            Status::parse("retired"),
            Err(ValueError::OneOf(_))
        ));
        assert_eq!(UnitType::ALL.len(), 9);
    }

    #[test]
    fn only_expulsion_expels() {
        assert!(SanctionKind::Expulsion.expels());
        assert!(SanctionKind::ALL.iter().filter(|k| k.expels()).count() == 1);
    }
}
