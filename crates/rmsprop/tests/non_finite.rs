//! NaN and infinite gradients: `Error` (default) and `Skip` leave parameters and state exactly as
//! they were; `Propagate` applies the step as PyTorch does.

use rmsprop::{
    Accumulate, Adagrad, AdagradConfig, Adam, AdamConfig, Error, Execution, NonFinitePolicy,
    Optimizer, ParamGroups, RmsProp, RmsPropConfig, Sgd, SgdConfig,
};

fn optimizers() -> Vec<Box<dyn Optimizer<f32>>> {
    vec![
        Box::new(
            RmsProp::new(
                RmsPropConfig::pytorch()
                    .with_centered(true)
                    .with_momentum(0.9),
            )
            .unwrap(),
        ),
        Box::new(RmsProp::new(RmsPropConfig::keras()).unwrap()),
        Box::new(Sgd::new(SgdConfig::momentum(0.1, 0.9)).unwrap()),
        Box::new(Adagrad::new(AdagradConfig::pytorch()).unwrap()),
        Box::new(Adam::new(AdamConfig::pytorch().with_amsgrad(true)).unwrap()),
    ]
}

type Snapshot = (Vec<Vec<u32>>, Vec<Vec<(&'static str, Vec<u32>)>>, u64);

fn snapshot(opt: &dyn Optimizer<f32>, params: &[Vec<f32>]) -> Snapshot {
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<u32>>();
    (
        params.iter().map(|p| bits(p)).collect(),
        (0..params.len())
            .map(|i| {
                opt.state_buffers(i)
                    .into_iter()
                    .map(|(n, b)| (n, bits(b)))
                    .collect()
            })
            .collect(),
        opt.steps(),
    )
}

fn step(
    opt: &mut dyn Optimizer<f32>,
    params: &mut [Vec<f32>],
    grads: &[Vec<f32>],
) -> rmsprop::Result<()> {
    let mut views: Vec<&mut [f32]> = params.iter_mut().map(|p| p.as_mut_slice()).collect();
    let gv: Vec<&[f32]> = grads.iter().map(|g| g.as_slice()).collect();
    opt.step(&mut views, &gv)
}

fn grads(bad: Option<(usize, usize, f32)>) -> Vec<Vec<f32>> {
    let mut g = vec![vec![0.1f32; 3], vec![-0.2f32; 70_000]];
    if let Some((t, i, v)) = bad {
        g[t][i] = v;
    }
    g
}

#[test]
fn error_policy_refuses_the_step_and_names_the_culprit() {
    for threads in [1, 2] {
        for mut opt in optimizers() {
            opt.set_execution(Execution::threads(threads).unwrap().with_split(1000, 5000));
            let mut params = vec![vec![1.0f32; 3], vec![0.5f32; 70_000]];
            step(opt.as_mut(), &mut params, &grads(None)).unwrap();
            for (t, i, v) in [
                (0, 2, f32::NAN),
                (1, 69_999, f32::INFINITY),
                (1, 12_345, f32::NEG_INFINITY),
            ] {
                let before = snapshot(opt.as_ref(), &params);
                let err = step(opt.as_mut(), &mut params, &grads(Some((t, i, v)))).unwrap_err();
                match err {
                    Error::NonFiniteGradient {
                        index,
                        element,
                        value,
                    } => {
                        assert_eq!((index, element), (t, i), "{}", opt.name());
                        assert!(
                            value.is_nan() == v.is_nan() && (value.is_nan() || value == v as f64)
                        );
                    }
                    other => panic!("{other:?}"),
                }
                assert!(err.to_string().contains("not applied"), "{err}");
                assert_eq!(before, snapshot(opt.as_ref(), &params), "{}", opt.name());
            }
            step(opt.as_mut(), &mut params, &grads(None)).unwrap();
            assert_eq!(opt.steps(), 2);
        }
    }
}

#[test]
fn skip_policy_counts_and_changes_nothing() {
    for mut opt in optimizers() {
        opt.set_execution(Execution::sequential().with_non_finite(NonFinitePolicy::Skip));
        let mut params = vec![vec![1.0f32; 3], vec![0.5f32; 70_000]];
        // A non-finite first step must not even create the state.
        step(opt.as_mut(), &mut params, &grads(Some((0, 0, f32::NAN)))).unwrap();
        assert!(opt.state_buffers(0).is_empty(), "{}", opt.name());
        step(opt.as_mut(), &mut params, &grads(None)).unwrap();
        let before = snapshot(opt.as_ref(), &params);
        step(
            opt.as_mut(),
            &mut params,
            &grads(Some((1, 7, f32::INFINITY))),
        )
        .unwrap();
        assert_eq!(before, snapshot(opt.as_ref(), &params), "{}", opt.name());
        assert_eq!((opt.steps(), opt.skipped_steps()), (1, 2), "{}", opt.name());
    }
}

#[test]
fn propagate_policy_lets_nan_through_as_pytorch_does() {
    for mut opt in optimizers() {
        opt.set_execution(Execution::sequential().with_non_finite(NonFinitePolicy::Propagate));
        let mut params = vec![vec![1.0f32; 3], vec![0.5f32; 70_000]];
        step(opt.as_mut(), &mut params, &grads(Some((0, 1, f32::NAN)))).unwrap();
        assert!(params[0][1].is_nan(), "{}", opt.name());
        assert!(params[0][0].is_finite());
    }
}

#[test]
fn groups_and_accumulation_refuse_non_finite_gradients_as_a_whole() {
    let mut groups = ParamGroups::<f32, Box<dyn Optimizer<f32>>>::new();
    for (i, opt) in optimizers().into_iter().enumerate().take(2) {
        groups.add_group(format!("g{i}"), 1, opt);
    }
    let mut params = vec![vec![1.0f32; 3], vec![0.5f32; 70_000]];
    step(&mut groups, &mut params, &grads(None)).unwrap();
    let before = snapshot(&groups, &params);
    let err = step(&mut groups, &mut params, &grads(Some((1, 3, f32::NAN)))).unwrap_err();
    assert!(
        matches!(
            err,
            Error::NonFiniteGradient {
                index: 1,
                element: 3,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(
        before,
        snapshot(&groups, &params),
        "the first group did not move"
    );

    let mut acc = Accumulate::new(Sgd::<f32>::new(SgdConfig::plain(1.0)).unwrap(), 2).unwrap();
    let mut x = vec![0.0f32];
    assert!(acc.step_single(&mut x, &[f32::NAN]).is_err());
    acc.step_single(&mut x, &[1.0]).unwrap();
    acc.step_single(&mut x, &[3.0]).unwrap();
    assert_eq!(
        x,
        vec![-2.0],
        "the refused micro-batch did not enter the mean"
    );
}
