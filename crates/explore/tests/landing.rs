//! A relaxation that ends as another molecule is counted as rebonded: two copper atoms started
//! beyond EMT's reach feel no force and stay apart, where EMT's minimum is a bonded dimer; a
//! slightly stretched dimer comes back to it, bonded.

use minima_atoms::Atoms;
use minima_explore::landing::{land, summarize, Collapse, Start};
use minima_explore::{relax, RelaxOptions, Stop};
use minima_label::Emt;

fn dimer(distance: f64) -> Atoms {
    Atoms::new(vec![29, 29], vec![[0.0; 3], [distance, 0.0, 0.0]]).unwrap()
}

#[test]
fn an_end_with_other_bonds_than_the_minimum_is_rebonded() {
    let emt = Emt::new();
    let options = RelaxOptions {
        fmax: 0.001,
        ..RelaxOptions::default()
    };
    let minimum = relax(&emt, &dimer(2.3), &options, |_| {}).unwrap();
    assert_eq!(minimum.stop, Stop::Converged);
    let landing = |start: f64| {
        let kind = Start::Scale(start / 2.3);
        land(
            &emt,
            &minimum.atoms,
            &dimer(start),
            kind,
            0,
            &options,
            Collapse::default(),
        )
        .unwrap()
    };
    let (back, apart) = (landing(2.6), landing(9.0));
    assert_eq!(back.rebonded, Some(false), "{back:?}");
    assert!(back.delta_p.unwrap() < 0.01, "{back:?}");
    assert_eq!(apart.rebonded, Some(true), "{apart:?}");
    let rows = summarize(&[back, apart]);
    assert_eq!(rows.iter().map(|r| r.rebonded).sum::<usize>(), 1);
}
