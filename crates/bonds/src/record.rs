//! Bonds recorded in a frame, so a dataset carries the bonds of its equilibrium geometry to
//! every scaled copy and no reader has to perceive them again.
//!
//! The info key `bonds` holds a string that survives extxyz and ASE unchanged: space-separated
//! `i-j:order` (0-based atoms, `i < j`; order 1, 2, 3 or 1.5 for aromatic), with `@a,b,c`
//! after `j` for a bond to a periodic image, e.g. `bonds="0-1:2 0-2:1 3-3@1,0,0:1"`.

use minima_atoms::{Atoms, Value};

use crate::{Bond, BondError, BondOrder};

/// The info key of the recorded bonds.
pub const BONDS_KEY: &str = "bonds";

/// `structure` with its bonds recorded (those it records, else perceived at its reference
/// geometry), so that every moved or scaled copy keeps them: a model's bond features must not
/// change along a scan or a relaxation. Structures whose bonds cannot be perceived (a metal
/// cluster, say) are returned unchanged.
pub fn with_fixed_bonds(structure: &Atoms) -> Atoms {
    let mut base = structure.clone();
    if let Ok(bonds) = crate::bonds_of(structure) {
        base.info.insert(BONDS_KEY.into(), Value::Str(encode(&bonds)));
    }
    base
}

/// The recording of `bonds`.
pub fn encode(bonds: &[Bond]) -> String {
    let words: Vec<String> = bonds
        .iter()
        .map(|b| {
            let image = if b.shift == [0; 3] {
                String::new()
            } else {
                format!("@{},{},{}", b.shift[0], b.shift[1], b.shift[2])
            };
            format!("{}-{}{image}:{}", b.i, b.j, b.order.as_f64())
        })
        .collect();
    words.join(" ")
}

/// The bonds of a recording of an `n`-atom structure.
pub fn decode(text: &str, n: usize) -> Result<Vec<Bond>, String> {
    text.split_whitespace()
        .map(|word| {
            let bad = || format!("bad bond {word:?} (expected i-j:order or i-j@a,b,c:order)");
            let (pair, order) = word.rsplit_once(':').ok_or_else(bad)?;
            let order = match order {
                "1" => BondOrder::Single,
                "2" => BondOrder::Double,
                "3" => BondOrder::Triple,
                "1.5" => BondOrder::Aromatic,
                _ => return Err(bad()),
            };
            let (pair, shift) = match pair.split_once('@') {
                Some((pair, image)) => {
                    let s: Vec<i32> = image
                        .split(',')
                        .map(str::parse)
                        .collect::<Result<_, _>>()
                        .map_err(|_| bad())?;
                    (pair, <[i32; 3]>::try_from(s).map_err(|_| bad())?)
                }
                None => (pair, [0; 3]),
            };
            let (i, j) = pair.split_once('-').ok_or_else(bad)?;
            let (i, j): (usize, usize) = (i.parse().map_err(|_| bad())?, j.parse().map_err(|_| bad())?);
            if i >= n || j >= n {
                return Err(format!("bond {word:?} names an atom beyond the {n} of this frame"));
            }
            Ok(Bond { i, j, shift, order })
        })
        .collect()
}

/// The bonds of a frame: its recorded `bonds` when present, else perceived at its reference
/// geometry.
pub fn bonds_of(atoms: &Atoms) -> Result<Vec<Bond>, BondError> {
    match atoms.info.get(BONDS_KEY) {
        Some(Value::Str(text)) => decode(text, atoms.len()).map_err(BondError::Recorded),
        // An empty string comes back from extxyz as no value at all in some writers; a frame
        // without bonds records nothing.
        Some(other) => Err(BondError::Recorded(format!("bonds={other:?} is not a bond list"))),
        None => {
            let reference = crate::reference_geometry(atoms)?;
            Ok(crate::perceive(&reference)?.bonds)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recordings_round_trip_and_bad_ones_are_named() {
        let bonds = vec![
            Bond {
                i: 0,
                j: 1,
                shift: [0; 3],
                order: BondOrder::Double,
            },
            Bond {
                i: 1,
                j: 2,
                shift: [0; 3],
                order: BondOrder::Aromatic,
            },
            Bond {
                i: 2,
                j: 2,
                shift: [1, 0, -1],
                order: BondOrder::Single,
            },
        ];
        let text = encode(&bonds);
        assert_eq!(text, "0-1:2 1-2:1.5 2-2@1,0,-1:1");
        assert_eq!(decode(&text, 3).unwrap(), bonds);
        assert!(decode("0-1:4", 3).unwrap_err().contains("0-1:4"));
        assert!(decode("0-7:1", 3).unwrap_err().contains("beyond"));
    }

    #[test]
    fn recorded_bonds_win_over_perception() {
        let mut h2 = Atoms::new(vec![1, 1], vec![[0.0; 3], [0.0, 0.0, 0.74]]).unwrap();
        assert_eq!(bonds_of(&h2).unwrap().len(), 1);
        h2.info.insert(BONDS_KEY.into(), Value::Str("0-1:2".into()));
        assert_eq!(bonds_of(&h2).unwrap()[0].order, BondOrder::Double);
    }
}
