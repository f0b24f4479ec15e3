// Tollgate console: progressive enhancement only. Every page works without
// this file; with it, values shown once get a Copy button.
(function () {
  'use strict';

  var status = document.getElementById('copy-status');

  function announce(message) {
    if (status) {
      status.textContent = message;
    }
  }

  // execCommand is the fallback where the asynchronous clipboard API is
  // missing or refused (a page not served over a secure context).
  function legacyCopy(input) {
    input.focus();
    input.select();
    try {
      return document.execCommand('copy');
    } catch (e) {
      return false;
    }
  }

  function setUp(button) {
    var input = document.getElementById(button.getAttribute('data-copy'));
    if (!input) {
      return;
    }
    var idle = button.textContent;
    var label = button.getAttribute('data-label') || 'Value';
    var timer = null;
    button.hidden = false;

    function copied() {
      button.textContent = 'Copied';
      button.classList.add('copied');
      button.setAttribute('data-copied', 'true');
      announce(label + ' copied to the clipboard.');
      clearTimeout(timer);
      timer = setTimeout(function () {
        button.textContent = idle;
        button.classList.remove('copied');
      }, 3000);
    }

    function failed() {
      input.focus();
      input.select();
      announce('Could not copy automatically: the text is selected, press Ctrl+C (or \u2318C) to copy it.');
    }

    button.addEventListener('click', function () {
      var text = input.value;
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text).then(copied, function () {
          if (legacyCopy(input)) {
            copied();
          } else {
            failed();
          }
        });
      } else if (legacyCopy(input)) {
        copied();
      } else {
        failed();
      }
    });
  }

  var buttons = document.querySelectorAll('button[data-copy]');
  for (var i = 0; i < buttons.length; i++) {
    setUp(buttons[i]);
  }

  // A value shown once is selected whole when focused, ready to copy.
  var shown = document.querySelectorAll('input.once');
  for (var j = 0; j < shown.length; j++) {
    shown[j].addEventListener('focus', function (e) {
      e.target.select();
    });
  }
})();
