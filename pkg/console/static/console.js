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

  // Disabling a client or key kills its tokens for good, so the switch
  // asks first, in a dialog saying what stops working. Confirmed, the form
  // is sent with confirm=yes; without this script the server asks on a
  // page of its own.
  var dialog = null;

  function confirmDialog() {
    if (dialog) {
      return dialog;
    }
    dialog = document.createElement('dialog');
    dialog.id = 'confirm-dialog';
    dialog.setAttribute('aria-labelledby', 'confirm-dialog-title');
    var title = document.createElement('h2');
    title.id = 'confirm-dialog-title';
    var stops = document.createElement('p');
    stops.className = 'confirm-stops';
    var tokens = document.createElement('p');
    tokens.className = 'confirm-tokens';
    var row = document.createElement('div');
    row.className = 'actions-row';
    var yes = document.createElement('button');
    yes.type = 'button';
    yes.className = 'danger';
    yes.id = 'confirm-dialog-yes';
    yes.textContent = 'Disable';
    var no = document.createElement('button');
    no.type = 'button';
    no.className = 'secondary';
    no.id = 'confirm-dialog-no';
    no.textContent = 'Cancel';
    row.appendChild(yes);
    row.appendChild(no);
    dialog.appendChild(title);
    dialog.appendChild(stops);
    dialog.appendChild(tokens);
    dialog.appendChild(row);
    document.body.appendChild(dialog);
    no.addEventListener('click', function () {
      dialog.close();
    });
    return dialog;
  }

  function askFirst(form) {
    form.addEventListener('submit', function (e) {
      if (form.getAttribute('data-confirmed') === 'yes') {
        return;
      }
      var d = confirmDialog();
      if (typeof d.showModal !== 'function') {
        return; // no dialog support: the server's page asks instead
      }
      e.preventDefault();
      d.querySelector('h2').textContent = form.getAttribute('data-confirm');
      d.querySelector('.confirm-stops').textContent = form.getAttribute('data-stops');
      d.querySelector('.confirm-tokens').textContent = form.getAttribute('data-tokens');
      var yes = d.querySelector('#confirm-dialog-yes');
      var fresh = yes.cloneNode(true);
      yes.parentNode.replaceChild(fresh, yes);
      fresh.addEventListener('click', function () {
        var input = document.createElement('input');
        input.type = 'hidden';
        input.name = 'confirm';
        input.value = 'yes';
        form.appendChild(input);
        form.setAttribute('data-confirmed', 'yes');
        d.close();
        form.submit();
      });
      d.showModal();
      d.querySelector('#confirm-dialog-no').focus();
    });
  }

  var risky = document.querySelectorAll('form[data-confirm]');
  for (var k = 0; k < risky.length; k++) {
    askFirst(risky[k]);
  }

  // A value shown once is selected whole when focused, ready to copy.
  var shown = document.querySelectorAll('input.once');
  for (var j = 0; j < shown.length; j++) {
    shown[j].addEventListener('focus', function (e) {
      e.target.select();
    });
  }
})();
