//! GPIO lines through `embedded-hal`'s pin traits, so the same code drives a Linux GPIO line on
//! the box (`gpio` feature: `linux-embedded-hal` over `/dev/gpiochipN`) and a test double in the
//! tests.
//!
//! - The status LED, an [`OutputPin`]. Steady: running; blinking: degraded (no frames, deadline
//!   misses, capture hung, or the processing loop silent); off: stopped.
//! - The frame trigger, an input ([`open_input`]) that
//!   [`TriggeredSource`](crate::capture::trigger::TriggeredSource) reads to let only frames
//!   taken during an X-ray exposure through.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use embedded_hal::digital::OutputPin;

use crate::config::GpioLine;
use crate::service::Health;

/// Half the blink period: on this long, off this long (2 Hz).
pub const BLINK_HALF_PERIOD: Duration = Duration::from_millis(250);
/// How often the LED thread looks at the service's health.
pub const POLL_PERIOD: Duration = Duration::from_millis(50);

/// The configuration key of the status LED's line, which errors about it name.
pub const STATUS_LED: &str = "gpio.status_led";
/// The configuration key of the frame trigger's line.
pub const FRAME_TRIGGER: &str = "gpio.frame_trigger";

/// Why a GPIO line cannot be used. Each error names the configuration key and the line.
#[derive(Debug, thiserror::Error)]
pub enum GpioError {
    /// This build has no GPIO support.
    #[error("{key} ({} line {line}): this build has no GPIO support; build with --features gpio", chip.display())]
    NoSupport {
        /// The line's configuration key ([`STATUS_LED`], [`FRAME_TRIGGER`]).
        key: &'static str,
        /// The configured chip.
        chip: std::path::PathBuf,
        /// The configured line.
        line: u32,
    },
    /// The chip or line could not be opened.
    #[error("{key}: cannot use {} line {line}: {reason}", chip.display())]
    Open {
        /// The line's configuration key.
        key: &'static str,
        /// The configured chip.
        chip: std::path::PathBuf,
        /// The configured line.
        line: u32,
        /// What the kernel said.
        reason: String,
    },
    /// The line opened but its level could not be read.
    #[error("{key}: cannot read {} line {line}: {reason}", chip.display())]
    Read {
        /// The line's configuration key.
        key: &'static str,
        /// The configured chip.
        chip: std::path::PathBuf,
        /// The configured line.
        line: u32,
        /// What the pin said.
        reason: String,
    },
}

/// A status LED on an output pin.
#[derive(Debug)]
pub struct StatusLed<P: OutputPin> {
    pin: P,
    active_low: bool,
    lit: Option<bool>,
}

impl<P: OutputPin> StatusLed<P> {
    /// An LED on `pin`, lit at low level when `active_low`. Its state is unknown until the
    /// first [`StatusLed::show`].
    pub fn new(pin: P, active_low: bool) -> Self {
        StatusLed { pin, active_low, lit: None }
    }

    /// Shows `health` at `elapsed` since the LED started; the pin is written only when the
    /// light changes.
    pub fn show(&mut self, health: Health, elapsed: Duration) -> Result<(), P::Error> {
        let lit = match health {
            Health::Running => true,
            Health::Degraded => (elapsed.as_millis() / BLINK_HALF_PERIOD.as_millis()).is_multiple_of(2),
            Health::Stopped => false,
        };
        if self.lit == Some(lit) {
            return Ok(());
        }
        if lit != self.active_low {
            self.pin.set_high()?;
        } else {
            self.pin.set_low()?;
        }
        self.lit = Some(lit);
        Ok(())
    }

    /// The pin, given back.
    pub fn into_pin(self) -> P {
        self.pin
    }
}

/// Drives `led` from `health` every [`POLL_PERIOD`] until `stop` is set, then turns it off.
/// A pin that fails is reported once and left alone.
pub fn drive<P: OutputPin>(mut led: StatusLed<P>, health: impl Fn() -> Health, stop: &AtomicBool) -> StatusLed<P> {
    let started = Instant::now();
    let mut failed = false;
    let mut show = |led: &mut StatusLed<P>, h: Health| {
        if let Err(e) = led.show(h, started.elapsed()) {
            if !failed {
                tracing::warn!("status LED: {e:?}; left as it is");
            }
            failed = true;
        }
    };
    while !stop.load(Ordering::Relaxed) {
        show(&mut led, health());
        std::thread::sleep(POLL_PERIOD);
    }
    show(&mut led, Health::Stopped);
    led
}

/// The pin type of a GPIO line in this build.
#[cfg(feature = "gpio")]
pub type LinePin = linux_embedded_hal::CdevPin;

/// The pin type of a GPIO line in a build without GPIO: none can be made.
#[cfg(not(feature = "gpio"))]
pub type LinePin = NoPin;

/// A pin that cannot exist: what a build without the `gpio` feature has for a GPIO line.
#[cfg(not(feature = "gpio"))]
#[derive(Debug)]
pub enum NoPin {}

#[cfg(not(feature = "gpio"))]
impl embedded_hal::digital::ErrorType for NoPin {
    type Error = std::convert::Infallible;
}

#[cfg(not(feature = "gpio"))]
impl OutputPin for NoPin {
    fn set_low(&mut self) -> Result<(), Self::Error> {
        match *self {}
    }
    fn set_high(&mut self) -> Result<(), Self::Error> {
        match *self {}
    }
}

#[cfg(not(feature = "gpio"))]
impl embedded_hal::digital::InputPin for NoPin {
    fn is_high(&mut self) -> Result<bool, Self::Error> {
        match *self {}
    }
    fn is_low(&mut self) -> Result<bool, Self::Error> {
        match *self {}
    }
}

/// Requests `line` from its chip with `flags` (and `value` for an output), as `consumer` (what
/// `gpioinfo` shows). `active_low` is left to the callers, which read and write levels.
#[cfg(feature = "gpio")]
fn request(
    key: &'static str,
    line: &GpioLine,
    flags: linux_embedded_hal::gpio_cdev::LineRequestFlags,
    value: u8,
    consumer: &str,
) -> Result<LinePin, GpioError> {
    use linux_embedded_hal::gpio_cdev::Chip;
    let error = |e: linux_embedded_hal::gpio_cdev::Error| GpioError::Open {
        key,
        chip: line.chip.clone(),
        line: line.line,
        reason: e.to_string(),
    };
    let mut chip = Chip::new(&line.chip).map_err(error)?;
    let handle = chip.get_line(line.line).map_err(error)?.request(flags, value, consumer).map_err(error)?;
    linux_embedded_hal::CdevPin::new(handle).map_err(error)
}

/// The LED's GPIO line as an output pin, initially off.
#[cfg(feature = "gpio")]
pub fn open_output(line: &GpioLine) -> Result<LinePin, GpioError> {
    use linux_embedded_hal::gpio_cdev::LineRequestFlags;
    request(STATUS_LED, line, LineRequestFlags::OUTPUT, u8::from(line.active_low), "wiretrace status")
}

/// The frame trigger's GPIO line as an input pin.
#[cfg(feature = "gpio")]
pub fn open_input(line: &GpioLine) -> Result<LinePin, GpioError> {
    use linux_embedded_hal::gpio_cdev::LineRequestFlags;
    request(FRAME_TRIGGER, line, LineRequestFlags::INPUT, 0, "wiretrace trigger")
}

/// The LED's GPIO line: this build has none (the `gpio` feature brings it).
#[cfg(not(feature = "gpio"))]
pub fn open_output(line: &GpioLine) -> Result<LinePin, GpioError> {
    Err(GpioError::NoSupport { key: STATUS_LED, chip: line.chip.clone(), line: line.line })
}

/// The frame trigger's GPIO line: this build has none (the `gpio` feature brings it).
#[cfg(not(feature = "gpio"))]
pub fn open_input(line: &GpioLine) -> Result<LinePin, GpioError> {
    Err(GpioError::NoSupport { key: FRAME_TRIGGER, chip: line.chip.clone(), line: line.line })
}

#[cfg(test)]
mod tests {
    use super::*;
    use embedded_hal::digital::{ErrorType, PinState};
    use std::sync::{Arc, Mutex};

    /// A pin that records every level written to it, in order.
    #[derive(Debug, Default, Clone)]
    struct RecordingPin(Arc<Mutex<Vec<PinState>>>);

    impl ErrorType for RecordingPin {
        type Error = std::convert::Infallible;
    }

    impl OutputPin for RecordingPin {
        fn set_low(&mut self) -> Result<(), Self::Error> {
            self.0.lock().expect("lock").push(PinState::Low);
            Ok(())
        }
        fn set_high(&mut self) -> Result<(), Self::Error> {
            self.0.lock().expect("lock").push(PinState::High);
            Ok(())
        }
    }

    /// The LED's level every 50 ms for `steps`, showing `health` from `from`.
    fn levels(led: &mut StatusLed<RecordingPin>, health: Health, from: Duration, steps: u32) -> Vec<bool> {
        let pin = led.pin.0.clone();
        (0..steps)
            .map(|i| {
                led.show(health, from + POLL_PERIOD * i).expect("infallible");
                pin.lock().expect("lock").last() == Some(&PinState::High)
            })
            .collect()
    }

    #[test]
    fn steady_when_running_blinking_when_degraded_off_when_stopped() {
        let pin = RecordingPin::default();
        let mut led = StatusLed::new(pin.clone(), false);
        assert!(levels(&mut led, Health::Running, Duration::ZERO, 20).iter().all(|&on| on), "steady on");
        assert_eq!(pin.0.lock().expect("lock").len(), 1, "written once while steady");

        let blinking = levels(&mut led, Health::Degraded, Duration::from_secs(1), 20);
        // 250 ms on, 250 ms off, sampled every 50 ms: five samples each.
        let expected: Vec<bool> = (0..20).map(|i| (i / 5) % 2 == 0).collect();
        assert_eq!(blinking, expected);

        assert!(levels(&mut led, Health::Stopped, Duration::from_secs(2), 5).iter().all(|&on| !on), "off");
        // On (running, still on as blinking starts), off, on, off (blinking; stopped is off).
        let writes = pin.0.lock().expect("lock").clone();
        assert_eq!(writes, [PinState::High, PinState::Low, PinState::High, PinState::Low], "a write per change only");
    }

    #[test]
    fn an_active_low_led_is_lit_by_a_low_level() {
        let pin = RecordingPin::default();
        let mut led = StatusLed::new(pin.clone(), true);
        led.show(Health::Running, Duration::ZERO).expect("infallible");
        led.show(Health::Stopped, Duration::from_secs(1)).expect("infallible");
        assert_eq!(*pin.0.lock().expect("lock"), [PinState::Low, PinState::High]);
    }

    #[test]
    fn the_driver_follows_health_and_turns_the_led_off_at_stop() {
        let pin = RecordingPin::default();
        let health = Mutex::new(Health::Running);
        let stop = AtomicBool::new(false);
        std::thread::scope(|scope| {
            let driver =
                scope.spawn(|| drive(StatusLed::new(pin.clone(), false), || *health.lock().expect("lock"), &stop));
            std::thread::sleep(Duration::from_millis(200));
            *health.lock().expect("lock") = Health::Degraded;
            std::thread::sleep(Duration::from_millis(700));
            stop.store(true, Ordering::Relaxed);
            driver.join().expect("driver");
        });
        let writes = pin.0.lock().expect("lock").clone();
        assert_eq!(writes.first(), Some(&PinState::High), "on while running");
        assert_eq!(writes.last(), Some(&PinState::Low), "off once stopped");
        assert!(writes.len() >= 3, "it blinked while degraded: {writes:?}");
    }

    #[cfg(not(feature = "gpio"))]
    #[test]
    fn without_the_feature_the_error_says_how_to_get_it() {
        let line = GpioLine { chip: "/dev/gpiochip0".into(), line: 12, active_low: false };
        let e = open_output(&line).expect_err("no GPIO support");
        assert_eq!(
            e.to_string(),
            "gpio.status_led (/dev/gpiochip0 line 12): this build has no GPIO support; build with --features gpio"
        );
        let e = open_input(&line).expect_err("no GPIO support");
        assert_eq!(
            e.to_string(),
            "gpio.frame_trigger (/dev/gpiochip0 line 12): this build has no GPIO support; build with --features gpio"
        );
    }
}
